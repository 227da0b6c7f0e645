"""The cloud registry (``core.clouds``): the one table both the Pulumi program and the function side
dispatch through, so a cloud is a row plus its two modules, and a cloud without a row is refused by name
on both sides, never sent down another cloud's branch (README.md, "Layout").

This module doubles as the third cloud's two halves in the tests that register one: ``ThirdCloudStack``
is its component, and ``validate`` / ``control`` / ``metrics`` / ``s3_client`` / ``state_store`` its
connector.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pulumi
import pytest

from core.clouds import CLOUD_PLUGINS, CloudPlugin, plugin
from core.contract import (
    CLOUD_SPELLINGS,
    CLOUDS,
    PROVISIONED_CONCURRENCY,
    RESERVED_CAPACITIES,
    UnknownCloudError,
)
from functions.cloud.connect import CloudTarget, TargetError
from functions.cloud.retry import RetryPolicy
from infra.program import COMPONENT_NAME, build_stack
from tests.infra.mocks import example_config, parse_example

ROOT = Path(__file__).resolve().parent.parent
DISPATCHERS = ("infra/program.py", "functions/cloud/connect.py")
RETRY = RetryPolicy(attempts=1)

# --- the third cloud's halves (what a new cloud's infra/ and functions/cloud/ modules provide) -----

BUILT: list[tuple[str, Any]] = []
CALLS: list[tuple[str, str]] = []


class ThirdCloudStack:
    """The third cloud's component: records what the program built it with."""

    def __init__(self, name: str, config: Any, opts: pulumi.ResourceOptions | None) -> None:
        BUILT.append((name, config.cloud))
        self.outputs: dict[str, Any] = {}


def validate(target: CloudTarget) -> None:
    CALLS.append(("validate", target.function))


def control(target: CloudTarget, retry: RetryPolicy) -> tuple[str, str]:
    CALLS.append(("control", target.function))
    return ("control", target.region)


def metrics(target: CloudTarget, retry: RetryPolicy) -> tuple[str, str]:
    CALLS.append(("metrics", target.function))
    return ("metrics", target.region)


def s3_client(target: CloudTarget, endpoint: str | None) -> tuple[str, str | None]:
    CALLS.append(("s3_client", target.function))
    return ("s3", endpoint)


def state_store(
    target: CloudTarget, endpoint: str | None, bucket: str, key: str, retry: RetryPolicy
) -> tuple[str, str]:
    CALLS.append(("state_store", target.function))
    return ("state", f"{bucket}/{key}")


THIRD = CloudPlugin(
    name="gcp",  # type: ignore[arg-type]
    component="tests.test_clouds:ThirdCloudStack",
    connector="tests.test_clouds",
    reserved_capacities=(PROVISIONED_CONCURRENCY,),
)


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_the_dispatchers_name_no_cloud() -> None:
    """Neither side branches on a cloud's name: each reads the registry, so a new cloud touches neither."""
    names = set(CLOUD_SPELLINGS) | set(CLOUD_SPELLINGS.values())
    for rel in DISPATCHERS:
        assert _string_constants(ROOT / rel) & names == set(), rel


def test_every_row_names_its_two_halves() -> None:
    """Each registered cloud's component and connector import, and the rows cover every canonical cloud."""
    assert set(CLOUD_PLUGINS) == set(CLOUDS)
    for name, row in CLOUD_PLUGINS.items():
        assert row.name == name and set(row.reserved_capacities) <= set(RESERVED_CAPACITIES)
        assert issubclass(row.load_component(), pulumi.ComponentResource), row.component
        connector = row.load_connector()
        for function in ("validate", "control", "metrics", "s3_client"):
            assert callable(getattr(connector, function)), (row.connector, function)
    assert plugin("tencentcloud", "llmfn:cloud") is CLOUD_PLUGINS["tencent"]  # the stack's spelling
    assert plugin(" Lambda ") is CLOUD_PLUGINS["aws"]


def test_the_program_refuses_a_cloud_without_a_row() -> None:
    """A config whose cloud has no row (however it got past validation) builds nothing: before, it was
    built as a Tencent stack."""
    config = parse_example(example_config("Pulumi.example-aws.yaml")).model_copy(update={"cloud": "gcp"})
    with pytest.raises(UnknownCloudError) as raised:
        build_stack(config)
    error = raised.value
    assert (error.field, error.value, error.allowed) == ("llmfn:cloud", "gcp", "aws, tencent")
    assert str(error) == "llmfn:cloud must be one of aws, tencent, got 'gcp'"


def test_the_function_side_refuses_a_cloud_without_a_row() -> None:
    """Refused when the target is made, and again at dispatch (a target whose cloud was changed after it
    was checked): before, control / metrics / s3_client sent any cloud but aws to Tencent's clients."""
    with pytest.raises(TargetError) as raised:
        CloudTarget("gcp", "fn", "live", "us-central1")  # type: ignore[arg-type]
    assert (raised.value.field, raised.value.allowed) == ("cloud", "aws, tencent")
    assert str(raised.value) == "cloud must be one of aws, tencent, got 'gcp'"
    target = CloudTarget("aws", "fn", "live", "us-east-1")
    object.__setattr__(target, "cloud", "gcp")
    for call in (
        lambda: target.control(RETRY),
        lambda: target.metrics(RETRY),
        lambda: target.s3_client(None),
        lambda: target.state_store(None, "bucket", "key", RETRY),
    ):
        with pytest.raises(UnknownCloudError, match=r"^cloud must be one of aws, tencent, got 'gcp'$"):
            call()


def test_a_new_row_is_all_both_sides_need(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering a third cloud's row routes the program and the function side to its two modules,
    with no change to either dispatcher; its reserved capacities come from the row too."""
    monkeypatch.setitem(CLOUD_PLUGINS, "gcp", THIRD)
    BUILT.clear()
    CALLS.clear()
    config = parse_example(example_config("Pulumi.example-aws.yaml")).model_copy(update={"cloud": "gcp"})
    stack = build_stack(config)
    assert isinstance(stack, ThirdCloudStack) and BUILT == [(COMPONENT_NAME, "gcp")]

    target = CloudTarget("gcp", "fn", "live", "us-central1")  # type: ignore[arg-type]
    assert target.control(RETRY) == ("control", "us-central1")  # type: ignore[comparison-overlap]
    assert target.metrics(RETRY) == ("metrics", "us-central1")  # type: ignore[comparison-overlap]
    assert target.s3_client("http://127.0.0.1:1") == ("s3", "http://127.0.0.1:1")
    assert target.state_store(None, "bucket", "key", RETRY) == ("state", "bucket/key")  # type: ignore[comparison-overlap]
    assert CALLS == [
        ("validate", "fn"),
        ("control", "fn"),
        ("metrics", "fn"),
        ("s3_client", "fn"),
        ("state_store", "fn"),
    ]
    with pytest.raises(TargetError, match="execution-environments on aws only"):
        CloudTarget("gcp", "fn", "live", "us-central1", reserved_capacity="execution-environments")  # type: ignore[arg-type]


def test_the_real_rows_reach_their_own_clients() -> None:
    """Through the registry, AWS gets Lambda's clients and S3, Tencent SCF's and COS's S3 API, and the
    Tencent connector's own check (every call is signed) runs when a Tencent target is made."""
    from functions.cloud.aws.control import LambdaControl
    from functions.cloud.aws.managed_instances import ManagedInstancesControl
    from functions.cloud.aws.metrics import CloudWatchMetrics
    from functions.cloud.state import S3StateStore
    from functions.cloud.tencent.control import ScfControl
    from functions.cloud.tencent.metrics import CloudMonitorMetrics
    from functions.cloud.tencent.state import CosStateStore

    aws = CloudTarget("aws", "fn", "live", "us-east-1")
    assert isinstance(aws.control(RETRY), LambdaControl) and isinstance(aws.metrics(RETRY), CloudWatchMetrics)
    assert aws.s3_client(None).meta.region_name == "us-east-1"
    s3 = aws.state_store(None, "bucket", "key", RETRY)
    assert type(s3) is S3StateStore and s3.client.meta.region_name == "us-east-1"
    gpu = CloudTarget("aws", "fn", "live", "us-east-1", reserved_capacity="execution-environments")
    assert isinstance(gpu.control(RETRY), ManagedInstancesControl)
    with pytest.raises(TargetError, match="Tencent credentials missing"):
        CloudTarget("tencent", "fn", "live", "ap-guangzhou")
    tencent = CloudTarget("tencent", "fn", "live", "ap-guangzhou", secret_id="id", secret_key="key")
    assert isinstance(tencent.control(RETRY), ScfControl)
    assert isinstance(tencent.metrics(RETRY), CloudMonitorMetrics)
    assert tencent.s3_client(None).meta.endpoint_url == "https://cos.ap-guangzhou.myqcloud.com"
    cos = tencent.state_store(None, "bucket-1250000000", "key", RETRY)
    assert (
        isinstance(cos, CosStateStore)
        and cos.client.meta.endpoint_url == "https://cos.ap-guangzhou.myqcloud.com"
    )
