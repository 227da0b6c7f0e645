"""The one configuration mechanism: frozen pydantic models with one-line errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import InputError
from core.validated import ConfigError, env_values
from functions.scaler.settings import ScalerSettings, SettingsError
from llmfn.errors import cli_message
from llmfn.local.config import DevConfig
from scaling.policies import HybridConfig, PolicyConfig

AWS_TARGET_ENV = {
    "LLMFN_CLOUD": "aws",
    "LLMFN_FUNCTION": "f",
    "LLMFN_ALIAS": "live",
    "LLMFN_REGION": "us-east-1",
}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: PolicyConfig(concurrency_per_instance="many"), "concurrency_per_instance"),
        (lambda: HybridConfig(headroom="x"), "headroom"),
        (lambda: PolicyConfig(hybrid={"headroom": "x"}), "hybrid.headroom"),
        (lambda: PolicyConfig.from_mapping({"kpa": {"tick_s": "soon"}}), "kpa.tick_s"),
        (lambda: DevConfig(model_dir=Path("m"), tier_exclusive="perhaps"), "tier_exclusive"),
    ],
)
def test_a_bad_type_is_one_line_naming_the_field_and_value(build, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        build()
    message = str(caught.value)
    assert not isinstance(caught.value, ValidationError)
    assert "\n" not in message and message.startswith(f"{field}: ")
    assert "got '" in message


def test_configs_are_frozen_and_refuse_unknown_fields() -> None:
    config = PolicyConfig(min_reserved=1)
    with pytest.raises(ValidationError, match="frozen"):
        config.min_reserved = 2  # type: ignore[misc]
    with pytest.raises(ConfigError, match="min_instances: Extra inputs are not permitted"):
        PolicyConfig(min_instances=1)  # type: ignore[call-arg]
    dev = DevConfig(model_dir=Path("m"))
    with pytest.raises(ValidationError, match="frozen"):
        dev.reserved = 3  # type: ignore[misc]
    assert hash(PolicyConfig()) == hash(PolicyConfig())


def test_policy_config_round_trips_through_json() -> None:
    config = PolicyConfig(
        min_reserved=1, hybrid=HybridConfig(rates_by_hour=tuple(float(h) for h in range(24)))
    )
    data = config.to_dict()
    assert data["hybrid"]["rates_by_hour"] == [float(h) for h in range(24)]
    assert PolicyConfig.from_mapping(data) == config


def test_dev_config_errors_never_show_the_api_key() -> None:
    with pytest.raises(ConfigError) as caught:
        DevConfig(model_dir=Path("m"), api_key="sk-very-secret", reserved=9, max_instances=2)
    # the library names its fields; the CLI words them as the flags the user typed
    assert "reserved 9 exceeds max_instances 2" in str(caught.value)
    assert cli_message(caught.value, "dev").startswith("--reserved 9 exceeds --max 2")
    assert "sk-very-secret" not in str(caught.value)
    assert "sk-very-secret" not in repr(DevConfig(model_dir=Path("m"), api_key="sk-very-secret"))


def test_dev_config_names_the_flag_before_coercion() -> None:
    with pytest.raises(
        ConfigError, match=r"^concurrency_per_instance must be an integer >= 1, got 2\.5"
    ) as caught:
        DevConfig(model_dir=Path("m"), concurrency_per_instance=2.5)  # type: ignore[arg-type]
    assert caught.value.field == "concurrency_per_instance" and isinstance(caught.value, InputError)
    assert cli_message(caught.value, "dev") == "--slots must be an integer >= 1, got 2.5"


def test_scaler_settings_from_env_name_the_variable() -> None:
    with pytest.raises(
        SettingsError, match=r"^window_s \(LLMFN_WINDOW_S\): Input should be a valid number.*'x'"
    ):
        ScalerSettings.from_env({**AWS_TARGET_ENV, "LLMFN_STATE_BUCKET": "b", "LLMFN_WINDOW_S": "x"})
    with pytest.raises(SettingsError, match=r"^state_bucket is required"):
        ScalerSettings.from_env(AWS_TARGET_ENV)
    settings = ScalerSettings.from_env(
        {**AWS_TARGET_ENV, "LLMFN_STATE_BUCKET": "b", "LLMFN_WINDOW_S": "120", "LLMFN_STATE_KEY": "",
         "LLMFN_POLICY_CONFIG": '{"min_reserved": 1}'}
    )  # fmt: skip
    assert (settings.window_s, settings.state_key, settings.policy_config) == (
        120.0,
        "llmfn/scaler-state.json",
        {"min_reserved": 1},
    )


def test_env_values_reads_set_variables_by_field_name() -> None:
    env = {"LLMFN_WINDOW_S": "60", "LLMFN_POLICY": "", "OTHER": "1"}
    assert env_values(["window_s", "policy", "state_key"], env, "LLMFN_") == {"window_s": "60"}


def test_reactive_bounds_have_the_one_name_and_still_read_the_seeds() -> None:
    assert (
        PolicyConfig.from_mapping(
            {"reactive": {"min_instances": 2, "max_instances": 9}}
        ).reactive.max_reserved
        == 9
    )
    config = PolicyConfig.from_mapping({"reactive": {"min_reserved": 2, "max_reserved": 9}})
    assert (config.reactive.min_reserved, config.reactive.max_reserved) == (2, 9)
    assert config.to_dict()["reactive"]["max_reserved"] == 9
    assert PolicyConfig.from_mapping(config.to_dict()) == config
