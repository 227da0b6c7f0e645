"""Deploy twice under mocks (a new model revision and new code) and check that every change reaches the
cloud as the provider really applies it (``infra/clouds/tencent/provider_semantics.py``): by its update call, by a
replacement, or, for what Pulumi ignores, by the setting's one owner (``infra/ownership.py``)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.clouds.tencent.provider_semantics import PROVIDER_TAG, RULES, Update, update_of
from infra.ownership import ignored_by_stack
from llmfn.release.promotion import parse_description
from tests.infra.mocks import REPO_ROOT, StackRun, example_with, plain, run_stack

NEW_REVISION = "fedcba9876543210fedcba9876543210fedcba98"
NEW_IMAGES = {
    "Pulumi.example-tencent.yaml": "ccr.ccs.tencentyun.com/llmfn/llmfn-serve:0.2.0@sha256:" + "cd" * 32,
    "Pulumi.example-aws.yaml": "123456789012.dkr.ecr.us-east-1.amazonaws.com/llmfn-serve:0.2.0",
}
VERSION_OF = {
    "Pulumi.example-tencent.yaml": ("tencentcloud:Scf/functionVersion:FunctionVersion", "description"),
    "Pulumi.example-aws.yaml": ("aws:lambda/function:Function", "description"),
}


def _changes(before: StackRun, after: StackRun) -> list[tuple[Any, str]]:
    """(registration after, input name) for every input that differs between the two deploys."""
    old = {(r.typ, r.name): r for r in before.registered}
    changed = []
    for resource in after.registered:
        previous = old.get((resource.typ, resource.name))
        if previous is None:
            continue
        for key in set(previous.inputs) | set(resource.inputs):
            if plain(previous.inputs.get(key)) != plain(resource.inputs.get(key)):
                changed.append((resource, key))
    return changed


@pytest.mark.parametrize("example", sorted(NEW_IMAGES))
def test_a_new_revision_and_new_code_reach_the_cloud(example: str) -> None:
    cloud = "aws" if "aws" in example else "tencentcloud"
    first = run_stack(example_with(example))
    second = run_stack(example_with(example, modelRevision=NEW_REVISION, imageUri=NEW_IMAGES[example]))
    changes = _changes(first, second)
    assert changes, "the second deploy changed nothing"
    owned_elsewhere = ignored_by_stack(cloud, "scaler")
    dropped = []
    for resource, key in changes:
        if key in resource.ignore_changes:
            # not Pulumi's to apply: the setting's one writer moves it (promote: the alias)
            assert key in owned_elsewhere.get(resource.typ, set()), (resource.typ, key)
            continue
        rule = update_of(resource.typ, key)
        if rule is not None and rule.update is Update.DROPPED:
            dropped.append(f"{resource.typ}.{key}: {rule.source}")
        if rule is not None and rule.update is Update.REPLACED:
            assert resource.typ.endswith("FunctionVersion") or resource.delete_before_replace, resource
            if resource.typ.endswith("FunctionVersion"):
                # the replaced (old) version is what the alias still serves until `llmfn promote` moves
                # it, and promote's rollback target: Pulumi must not delete it (provider: Delete calls
                # DeleteFunction with that Qualifier)
                assert resource.retain_on_delete, "a new revision would delete the version the alias serves"
    assert dropped == [], "changes the provider would silently drop"

    # the new code and revision reach the function itself ...
    changed_keys = {(r.typ, k) for r, k in changes}
    code_key = "imageUri" if cloud == "aws" else "imageConfigs"
    function_type = "aws:lambda/function:Function" if cloud == "aws" else "tencentcloud:Scf/function:Function"
    assert {(function_type, code_key), (function_type, "environment")} <= changed_keys
    # ... a new version is published (a new number) ...
    assert second.outputs["version"] != first.outputs["version"]
    # ... described so that `llmfn promote --model-revision` finds it and moves the alias to it
    typ, key = VERSION_OF[example]
    description = next(r.inputs[key] for r in second.registered if r.typ == typ and r.name == "llmfn-" + (
        "function" if cloud == "aws" else "version"))  # fmt: skip
    assert parse_description(description) == (NEW_REVISION, None)
    # the alias is not Pulumi's after creation: promote moves it (tests/release/test_promotion.py)
    alias = next(
        r for r in second.registered if r.typ.endswith(("lambda/alias:Alias", "functionAlias:FunctionAlias"))
    )
    assert {"functionVersion", "routingConfig"} <= alias.ignore_changes


def test_no_stack_resource_relies_on_a_dropped_or_path_only_update() -> None:
    """The Tencent stack uses neither scf.Layer (updates dropped) nor zip paths (content changes dropped)."""
    run = run_stack(example_with("Pulumi.example-tencent.yaml"))
    for resource in run.registered:
        for key in resource.inputs:
            rule = update_of(resource.typ, key)
            assert (
                rule is None
                or rule.update not in (Update.DROPPED, Update.PATH_ONLY)
                or (key in resource.ignore_changes)
            ), f"{resource.typ}.{key}: {rule.source}"


def test_every_rule_cites_the_provider_source() -> None:
    for rule in RULES:
        assert rule.source.startswith("tencentcloud/services/scf/resource_tc_scf_"), rule
        assert re.search(r"\.go:\d+", rule.source), f"cite the line at {PROVIDER_TAG}: {rule}"


def test_the_cited_provider_is_the_one_installed() -> None:
    """tencentcloud-iac-pulumi 0.2.3 wraps terraform-provider-tencentcloud v1.82.42 (its provider/go.mod):
    the rules and the docs cite that tag, not the provider's HEAD."""
    from importlib.metadata import version

    assert version("tencentcloud-iac-pulumi") == "0.2.3"
    assert PROVIDER_TAG == "v1.82.42"
    readme = (REPO_ROOT / "infra" / "README.md").read_text()
    assert "v1.82.42" in readme and "f6970a900" not in readme
    assert (
        "f6970a900" not in (REPO_ROOT / "infra" / "clouds" / "tencent" / "provider_semantics.py").read_text()
    )
