"""The registry of clouds: one row per cloud, the one table the Pulumi program and the function side read.

A cloud is a plugin (README.md, "Layout"): its row names, by import path, the Pulumi component that
deploys a stack on it (``infra.program`` builds it) and the module that connects the function side to
it (``functions.cloud.connect`` dispatches to it: the actuator, the metric source, the scaler's state
store). Both dispatch through :func:`plugin`, so a cloud without a row is refused by name, never
sent down another cloud's branch; adding a cloud is a row here and the two homes it names: its
``infra/clouds/<cloud>/`` folder (component, config rules, registry) and its ``functions/cloud/<cloud>/``
package (connector, control, metrics, state store, entry).

Rows hold import paths, not classes, so ``core/`` imports nothing of ours but itself and each side
loads only its own half (the function image has no ``infra/``, the Pulumi program no cloud SDK).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

from core.contract import (
    CLOUD_SPELLINGS,
    EXECUTION_ENVIRONMENTS,
    PROVISIONED_CONCURRENCY,
    Cloud,
    ReservedCapacity,
    UnknownCloudError,
)


@dataclass(frozen=True)
class CloudPlugin:
    """One cloud's row: where its two halves live and what its reserved floor may be."""

    name: Cloud
    component: str
    """``module:Class`` of the Pulumi component resource, constructed as ``Class(name, config, opts)``
    with the validated ``infra.config.StackConfig``."""
    connector: str
    """Module of the function side: ``validate(target)``, ``control(target, retry)``,
    ``metrics(target, retry)``, ``s3_client(target, endpoint)`` and
    ``state_store(target, endpoint, bucket, key, retry)`` for a ``functions.cloud.connect.CloudTarget``."""
    reserved_capacities: tuple[ReservedCapacity, ...]
    """What the scaler's reserved floor may be on this cloud (``core.contract.ReservedCapacity``)."""
    stack_name: str = ""
    """The stack's ``llmfn:cloud`` value (Pulumi's provider name); the row's name when empty."""
    config_rules: str = ""
    """``module:attribute`` of the cloud's stack-config rules (an ``infra.clouds.CloudRules``); when
    empty, ``RULES`` of the ``config`` module beside the component (``infra.clouds.<cloud>.config``)."""

    @property
    def stack_cloud(self) -> str:
        """What ``llmfn:cloud`` says to pick this row."""
        return self.stack_name or self.name

    def load_component(self) -> Any:
        """The component class (imports ``infra/``: the Pulumi program's half)."""
        module, _, name = self.component.partition(":")
        return getattr(importlib.import_module(module), name)

    def load_config_rules(self) -> Any:
        """The cloud's stack-config rules (imports ``infra/``: the Pulumi program's half)."""
        package = self.component.partition(":")[0].rpartition(".")[0]
        module, _, name = (self.config_rules or f"{package}.config:RULES").partition(":")
        return getattr(importlib.import_module(module), name)

    def load_connector(self) -> ModuleType:
        """The connector module (imports ``functions/cloud/``: the function side's half)."""
        return importlib.import_module(self.connector)


CLOUD_PLUGINS: Final[dict[str, CloudPlugin]] = {
    "aws": CloudPlugin(
        name="aws",
        component="infra.clouds.aws.component:AwsInferenceStack",
        connector="functions.cloud.aws.connector",
        reserved_capacities=(PROVISIONED_CONCURRENCY, EXECUTION_ENVIRONMENTS),
        config_rules="infra.clouds.aws.config:RULES",
    ),
    "tencent": CloudPlugin(
        name="tencent",
        component="infra.clouds.tencent.component:TencentInferenceStack",
        connector="functions.cloud.tencent.connector",
        reserved_capacities=(PROVISIONED_CONCURRENCY,),
        stack_name="tencentcloud",
        config_rules="infra.clouds.tencent.config:RULES",
    ),
}
"""Canonical cloud name (``core.contract.Cloud``) -> its row."""


def plugin(name: str, field: str = "cloud") -> CloudPlugin:
    """The row of the cloud ``name``, given canonically or in any spelling of
    :data:`core.contract.CLOUD_SPELLINGS` (``tencentcloud``, ``lambda``...).

    Raises UnknownCloudError naming ``field`` (``llmfn:cloud``, ``cloud``), the value and the
    registered clouds when ``name`` has no row.
    """
    row = CLOUD_PLUGINS.get(CLOUD_SPELLINGS.get(name.strip().lower(), name))
    if row is None:
        allowed = ", ".join(CLOUD_PLUGINS)
        raise UnknownCloudError(
            f"must be one of {allowed}, got {name!r}", field=field, value=name, allowed=allowed
        )
    return row


def stack_plugin(value: str, field: str = "llmfn:cloud") -> CloudPlugin:
    """The row whose stack name (:attr:`CloudPlugin.stack_cloud`, exactly as ``llmfn:cloud`` takes it:
    ``aws``, ``tencentcloud``) is ``value``.

    Raises UnknownCloudError naming ``field``, the value and the registered stack names otherwise.
    """
    for row in CLOUD_PLUGINS.values():
        if row.stack_cloud == value:
            return row
    allowed = ", ".join(row.stack_cloud for row in CLOUD_PLUGINS.values())
    raise UnknownCloudError(
        f"must be one of {allowed}, got {value!r}", field=field, value=value, allowed=allowed
    )
