"""One place that turns "which function on which cloud" into its metric source, actuator and S3 client."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import SecretStr

from core import contract
from core.clouds import CLOUD_PLUGINS, plugin
from core.contract import RESERVED_CAPACITIES, Cloud, ReservedCapacity
from core.errors import InputError
from functions.cloud.retry import RetryPolicy
from functions.cloud.state import S3StateStore
from functions.cloud.types import CloudControl, MetricSource
from functions.secrets import as_secret


class TargetError(InputError):
    """A setting that names the cloud target is missing or wrong (the message names it)."""


def cloud_name(text: str) -> Cloud:
    """The canonical cloud ("aws" or "tencent") for any spelling :data:`core.contract.CLOUD_SPELLINGS`
    accepts: aws, lambda, tencent, tencentcloud (infra's name), scf (the layer builder's)."""
    try:
        return contract.cloud_name(text)
    except contract.UnknownCloudError as exc:
        raise TargetError(str(exc)) from exc


@dataclass(frozen=True)
class CloudTarget:
    """A function alias on a cloud.

    cloud: a canonical name with a row in :data:`core.clouds.CLOUD_PLUGINS` ("aws", "tencent"). function / alias: names; namespace: SCF namespace (Tencent only).
    region: cloud region. endpoint: API endpoint override URL (tests: the stand-ins), None = the
    cloud's own. secret_id / secret_key / session_token: Tencent credentials (AWS uses boto3's
    credential chain), held as ``SecretStr`` (strings given are wrapped) so that a repr of the target, or
    of settings holding it, shows them masked. timeout_s: per-request timeout, seconds. reserved_capacity: what the reserved
    floor is: provisioned concurrency, or on Lambda Managed Instances (AWS GPU functions) the
    version's ``MinExecutionEnvironments``.
    """

    cloud: Cloud
    function: str
    alias: str
    region: str
    namespace: str = "default"
    endpoint: str | None = None
    secret_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    session_token: SecretStr | None = None
    timeout_s: float = 10.0
    reserved_capacity: ReservedCapacity = contract.PROVISIONED_CONCURRENCY

    def __post_init__(self) -> None:
        for name in ("secret_id", "secret_key", "session_token"):
            object.__setattr__(self, name, as_secret(getattr(self, name)))
        row = CLOUD_PLUGINS.get(self.cloud)  # the canonical name only: cloud_name() maps the spellings
        if row is None:
            allowed = ", ".join(CLOUD_PLUGINS)
            raise TargetError(
                f"must be one of {allowed}, got {self.cloud!r}",
                field="cloud",
                value=self.cloud,
                allowed=allowed,
            )
        if self.reserved_capacity not in row.reserved_capacities:
            raise TargetError(
                f"reserved capacity ({contract.ENV_RESERVED_CAPACITY}) must be one of "
                f"{', '.join(RESERVED_CAPACITIES)} ({_where_allowed()}), got {self.reserved_capacity!r}"
            )
        for name in ("function", "alias", "region"):
            if not getattr(self, name):
                raise TargetError(f"{name!r} is required (flag --{name}, or the stack outputs)")
        row.load_connector().validate(self)

    @staticmethod
    def tencent_credentials(env: Mapping[str, str] | None = None) -> dict[str, SecretStr | None]:
        """Tencent keys from the environment (on SCF, ``functions.scaler.handler.tencent_env`` puts each
        request's ``X-Scf-*`` role keys there: an image function's own environment has none)."""
        env = os.environ if env is None else env
        return {
            "secret_id": as_secret(env.get("TENCENTCLOUD_SECRETID")),
            "secret_key": as_secret(env.get("TENCENTCLOUD_SECRETKEY")),
            "session_token": as_secret(env.get("TENCENTCLOUD_SESSIONTOKEN")),
        }

    def _connector(self) -> ModuleType:
        """This cloud's connector module (:data:`core.clouds.CLOUD_PLUGINS`); a cloud without a row is
        refused by name, never sent to another cloud's."""
        return plugin(self.cloud, field="cloud").load_connector()

    def control(self, retry: RetryPolicy) -> CloudControl:
        """The actuator: versions, alias routing, provisioned capacity."""
        control: CloudControl = self._connector().control(self, retry)
        return control

    def metrics(self, retry: RetryPolicy) -> MetricSource:
        """The metric source: CloudWatch or Tencent Cloud Monitor."""
        metrics: MetricSource = self._connector().metrics(self, retry)
        return metrics

    def s3_client(self, endpoint: str | None) -> Any:
        """A boto3 S3 client for the state object: S3 on AWS; COS's S3 API on Tencent."""
        return self._connector().s3_client(self, endpoint)

    def state_store(self, endpoint: str | None, bucket: str, key: str, retry: RetryPolicy) -> S3StateStore:
        """The scaler's state object ``bucket`` / ``key`` in this cloud's object store, written the way the
        store allows (conditional on S3, create-only then plain on COS); ``endpoint``: an override URL."""
        store: S3StateStore = self._connector().state_store(self, endpoint, bucket, key, retry)
        return store


def _where_allowed() -> str:
    """Which reserved capacity each cloud allows, from the registry: ``execution-environments on aws only``."""
    limited = []
    for capacity in RESERVED_CAPACITIES:
        clouds = [row.name for row in CLOUD_PLUGINS.values() if capacity in row.reserved_capacities]
        if len(clouds) < len(CLOUD_PLUGINS):
            limited.append(f"{capacity} on {', '.join(clouds)} only")
    return "; ".join(limited)
