"""How the Tencent provider really applies an update, where that differs from a plain diff.

``tencentcloud-iac-pulumi`` wraps terraform-provider-tencentcloud (v1.82.x); Pulumi's mocks cannot see
its update functions, so a change the provider drops looks deployed in every test. Each entry cites
the provider file (``tencentcloud/services/scf/`` in github.com/tencentcloudstack/
terraform-provider-tencentcloud, read at commit f6970a900) and says what reaches the cloud. The
deploy-twice test (``tests/infra/test_provider_semantics.py``) checks every change of the program
against this table.
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


SCF = "tencentcloud/services/scf/"
RULES: tuple[ProviderRule, ...] = (
    ProviderRule(
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "functionVersion",
        Update.DROPPED,
        SCF + "resource_tc_scf_function_alias.go, resourceTencentCloudScfFunctionAliasUpdate: "
        'mutableArgs := []string{"routing_config", "description"}; UpdateAlias is sent only if one '
        "of them HasChange",
    ),
    ProviderRule(
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "routingConfig",
        Update.SENT,
        SCF + "resource_tc_scf_function_alias.go (mutableArgs)",
    ),
    ProviderRule(
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "description",
        Update.SENT,
        SCF + "resource_tc_scf_function_alias.go (mutableArgs)",
    ),
    ProviderRule(
        "tencentcloud:Scf/functionVersion:FunctionVersion",
        "*",
        Update.REPLACED,
        SCF + "resource_tc_scf_function_version.go: every argument ForceNew, no Update function; "
        "its Delete (resourceTencentCloudScfFunctionVersionDelete -> service_tencentcloud_scf.go "
        "DeleteScfFunctionVersionById) sends DeleteFunction with Qualifier = the old version, so the "
        "stack retains it (retain_on_delete): the alias serves it until promote moves",
    ),
    ProviderRule(
        "tencentcloud:Scf/function:Function",
        "zipFile",
        Update.PATH_ONLY,
        SCF + 'resource_tc_scf_function.go, update: if d.HasChange("zip_file") (the path string)',
    ),
    ProviderRule(
        "tencentcloud:Scf/function:Function",
        "imageConfigs",
        Update.SENT,
        SCF + 'resource_tc_scf_function.go, update: if d.HasChange("image_config") -> UpdateFunctionCode',
    ),
    ProviderRule(
        "tencentcloud:Scf/function:Function",
        "environment",
        Update.SENT,
        SCF + 'resource_tc_scf_function.go, update: if d.HasChange("environment")',
    ),
    ProviderRule(
        "tencentcloud:Scf/layer:Layer",
        "*",
        Update.DROPPED,
        SCF + "resource_tc_scf_layer.go: resourceTencentCloudScfLayerUpdate returns nil",
    ),
    ProviderRule(
        "tencentcloud:Scf/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
        "*",
        Update.REPLACED,
        SCF + "resource_tc_scf_provisioned_concurrency_config.go: every argument ForceNew",
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
