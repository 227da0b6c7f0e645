"""Fixtures of the cloud suite: moto's server (once per session, reset per test), the proxy in front
of it, the SCF emulator, and ``stand_in``: each test that takes it runs once per cloud."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.cloud.aws_proxy import AwsProxy
from tests.cloud.cos_standin import CosStandIn
from tests.cloud.scf_emulator import ScfEmulator
from tests.cloud.standins import StandIn, aws_stand_in, tencent_stand_in
from tests.conftest import configure_moto


@pytest.fixture(autouse=True)
def _aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials: boto3 must never find real ones in tests."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def moto_reset(moto_server_url: str) -> str:
    """moto's URL, its state wiped for this test."""
    requests.post(f"{moto_server_url}/moto-api/reset", timeout=10).raise_for_status()
    configure_moto(moto_server_url)
    return moto_server_url


@pytest.fixture
def aws_proxy(moto_reset: str) -> Iterator[AwsProxy]:
    proxy = AwsProxy(moto_reset).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def scf() -> Iterator[ScfEmulator]:
    emulator = ScfEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture(params=["aws", "tencent"])
def stand_in(request: pytest.FixtureRequest, moto_reset: str, aws_proxy: AwsProxy) -> Iterator[StandIn]:
    if request.param == "aws":
        yield aws_stand_in(moto_reset, aws_proxy)
        return
    emulator: ScfEmulator = request.getfixturevalue("scf")
    cos = CosStandIn(aws_proxy.url).start()
    yield tencent_stand_in(emulator, moto_reset, aws_proxy, cos)
    cos.stop()
