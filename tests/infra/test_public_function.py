"""``llmfn:public`` reaches the function: the entry points refuse to serve without a key unless told so."""

from __future__ import annotations

from typing import Any

import pytest

from functions.settings import ServeSettings, SettingsError
from tests.infra.mocks import example_config, example_with, plain, run_stack

CASES = {
    "aws": ("Pulumi.example-aws.yaml", "aws:lambda/function:Function", "llmfn-function"),
    "tencentcloud": ("Pulumi.example-tencent.yaml", "tencentcloud:Scf/function:Function", "llmfn-function"),
}


def _function_env(config: dict[str, Any], typ: str, name: str) -> dict[str, str]:
    run = run_stack(config)
    (function,) = [r.inputs for r in run.of_type(typ) if r.name == name]
    env = plain(function["environment"])
    return env.get("variables", env)


@pytest.mark.parametrize("cloud", sorted(CASES))
def test_a_public_stack_tells_the_function_it_may_serve_without_a_key(cloud: str) -> None:
    example, typ, name = CASES[cloud]
    env = _function_env(example_with(example, apiKey=None, public=True), typ, name)
    assert env["LLMFN_PUBLIC"] == "1" and "LLMFN_API_KEY" not in env
    settings = ServeSettings.from_env(env)
    settings.require_key_unless_public("a cloud entry point answers whoever reaches the function's URL")


@pytest.mark.parametrize("cloud", sorted(CASES))
def test_a_stack_with_a_key_is_not_public(cloud: str) -> None:
    example, typ, name = CASES[cloud]
    env = _function_env(example_config(example), typ, name)
    assert "LLMFN_PUBLIC" not in env and env["LLMFN_API_KEY"]
    without_key = {k: v for k, v in env.items() if k != "LLMFN_API_KEY"}
    with pytest.raises(SettingsError, match="api_key"):
        ServeSettings.from_env(without_key).require_key_unless_public("a cloud entry point")
