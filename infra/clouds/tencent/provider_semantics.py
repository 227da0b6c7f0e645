"""How the Tencent provider really applies an update, where that differs from a plain diff.

``tencentcloud-iac-pulumi`` 0.2.3 wraps terraform-provider-tencentcloud **v1.82.42** (its
``provider/go.mod``); Pulumi's mocks cannot see its update functions, so a change the provider drops
looks deployed in every test. Each entry cites the provider file (``tencentcloud/services/scf/`` in
github.com/tencentcloudstack/terraform-provider-tencentcloud at tag :data:`PROVIDER_TAG`, the version
installed, not the provider's HEAD: ``resource_tc_scf_function.go`` differs by 400+ lines between them)
with line numbers at that tag, and says what reaches the cloud. The deploy-twice test
(``tests/infra/test_provider_semantics.py``) checks every change of the program against this table.

Not a row, since the stack does not use it for the inference function: ``Function.triggers`` are created
by ``service_tencentcloud_scf.go`` ``CreateTriggers`` (line 515) without a ``Qualifier``, so they land on
``$LATEST``; the function URL is ``infra.clouds.tencent.scf_dynamic.ScfFunctionUrl`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Update(Enum):
    """What the provider does with a changed input."""

    SENT = "sent by the provider's update call"
    REPLACED = "forces a replacement (ForceNew): delete + create"
    DROPPED = "accepted in the plan, never sent: the cloud keeps the old value"
    PATH_ONLY = "sent only when the value (a file path) changes, not when the file's content does"


@dataclass(frozen=True)
class ProviderRule:
    """One resource property: its update semantics and where the provider's source says so."""

    resource: str
    property: str  # camelCase input name; "*" for every input
    update: Update
    source: str


PROVIDER_TAG = "v1.82.42"
PROVIDER_COMMIT = "991428da4591b0481818823074303de7bd5562f5"  # what the tag names
SCF = "tencentcloud/services/scf/"
RULES: tuple[ProviderRule, ...] = (
    ProviderRule(
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "functionVersion",
        Update.DROPPED,
        SCF + "resource_tc_scf_function_alias.go:309-340, resourceTencentCloudScfFunctionAliasUpdate: "
        'mutableArgs := []string{"routing_config", "description"}; UpdateAlias is sent only if one '
        "of them HasChange",
    ),
    ProviderRule(
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "routingConfig",
        Update.SENT,
        SCF + "resource_tc_scf_function_alias.go:330 (mutableArgs)",
    ),
    ProviderRule(
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "description",
        Update.SENT,
        SCF + "resource_tc_scf_function_alias.go:330 (mutableArgs)",
    ),
    ProviderRule(
        "tencentcloud:Scf/functionVersion:FunctionVersion",
        "*",
        Update.REPLACED,
        SCF + "resource_tc_scf_function_version.go: every argument ForceNew, no Update function; "
        "its Delete (line 177, resourceTencentCloudScfFunctionVersionDelete -> service_tencentcloud_scf.go:723 "
        "DeleteScfFunctionVersionById) sends DeleteFunction with Qualifier = the old version, so the "
        "stack retains it (retain_on_delete): the alias serves it until promote moves",
    ),
    ProviderRule(
        "tencentcloud:Scf/function:Function",
        "zipFile",
        Update.PATH_ONLY,
        SCF + 'resource_tc_scf_function.go:1103, update: if d.HasChange("zip_file") (the path string)',
    ),
    ProviderRule(
        "tencentcloud:Scf/function:Function",
        "imageConfigs",
        Update.SENT,
        SCF
        + 'resource_tc_scf_function.go:1125, update: if d.HasChange("image_config") -> UpdateFunctionCode '
        "(ModifyFunctionCode, service_tencentcloud_scf.go:235, then waitScfFunctionReady until Active)",
    ),
    ProviderRule(
        "tencentcloud:Scf/function:Function",
        "environment",
        Update.SENT,
        SCF + 'resource_tc_scf_function.go:1229, update: if d.HasChange("environment")',
    ),
    ProviderRule(
        "tencentcloud:Scf/layer:Layer",
        "*",
        Update.DROPPED,
        SCF + "resource_tc_scf_layer.go:215, resourceTencentCloudScfLayerUpdate returns nil",
    ),
    ProviderRule(
        "tencentcloud:Scf/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
        "*",
        Update.REPLACED,
        SCF + "resource_tc_scf_provisioned_concurrency_config.go:30-44, every argument ForceNew",
    ),
)


def update_of(resource: str, prop: str) -> ProviderRule | None:
    """The rule for a resource property (an exact property rule wins over ``*``); None: a plain diff."""
    exact = next((r for r in RULES if r.resource == resource and r.property == prop), None)
    return exact or next((r for r in RULES if r.resource == resource and r.property == "*"), None)


def markdown_table() -> str:
    """The table as ``infra/README.md`` shows it."""
    rows = ["| resource | input | on change | provider source |", "|---|---|---|---|"]
    for r in RULES:
        rows.append(f"| `{r.resource.split(':')[-1]}` | `{r.property}` | {r.update.value} | {r.source} |")
    return "\n".join(rows)
