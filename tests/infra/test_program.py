"""The program as Pulumi runs it: ``infra/`` as a directory, config from the engine's environment."""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest

from infra.config import parse_stack_config
from infra.program import current_raw_config
from tests.infra.mocks import EXAMPLE_SECRETS, REPO_ROOT, example_config, install, run_stack

AWS = "Pulumi.example-aws.yaml"


def test_running_the_infra_directory_builds_the_same_graph_as_the_tests() -> None:
    mocks = install(example_config(AWS), EXAMPLE_SECRETS)

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(REPO_ROOT / "infra"), run_name="__main__")  # what `main: infra/` does

    program()
    from_directory = sorted((r.typ, r.name) for r in mocks.registered)
    assert from_directory == sorted((r.typ, r.name) for r in run_stack(example_config(AWS)).registered)
    assert ("aws:lambda/function:Function", "llmfn-function") in from_directory


def test_config_and_secret_keys_come_from_the_engine_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    install({})  # nothing set in-process: only the environment the engine passes
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in example_config(AWS).items()}
    values["llmfn:apiKey"] = "sk-from-env"
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["llmfn:apiKey"]))
    raw, secret_keys = current_raw_config()
    assert secret_keys == {"llmfn:apiKey"}
    config = parse_stack_config(raw, secret_keys)
    assert config.api_key is not None and config.api_key.get_secret_value() == "sk-from-env"
    assert config.rates_by_hour == example_config(AWS)["llmfn:ratesByHour"]
