"""The stack config schema: the examples validate; each class of bad value is refused by key, value and rule."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.config import StackConfigError, config_key, parse_stack_config
from scaling.forecasting import forecast_profile
from scaling.plan import hourly_schedule
from scaling.traces import read_trace
from tests.infra.mocks import REPO_ROOT, example_config, example_with, install

TENCENT = "Pulumi.example-tencent.yaml"
AWS = "Pulumi.example-aws.yaml"


def test_config_keys_are_what_users_type() -> None:
    assert config_key("memory_mb") == "llmfn:memoryMb"
    assert config_key("p95_latency_s") == "llmfn:p95LatencyS"
    assert config_key("cloud") == "llmfn:cloud"


def test_keys_of_other_namespaces_are_left_to_their_providers() -> None:
    config = example_config(AWS) | {"aws:region": "eu-west-1", "pulumi:template": "x"}
    assert parse_stack_config(config).region == "us-east-1"


def test_examples_parse_with_their_own_values() -> None:
    tencent = parse_stack_config(example_config(TENCENT))
    assert (tencent.cloud, tencent.memory_mb, tencent.utilization_target) == ("tencentcloud", 16384, 0.7)
    assert tencent.rates_by_hour[15] == 12.0 and tencent.utc_offset_hours == 8
    aws = parse_stack_config(example_config(AWS))
    assert (aws.cloud, aws.timeout_s, aws.concurrency_per_instance) == ("aws", 120, 1)


# (config, fragments the message must contain: the key as typed, the value, what is allowed)
BAD_CONFIGS = {
    "unknown key": (example_with(AWS, memoryMB=2048), ["llmfn:memoryMB", "unknown", "llmfn:memoryMb"]),
    "missing required": (
        example_with(AWS, p95LatencyS=None),
        ["llmfn:p95LatencyS is required", "pulumi config set"],
    ),
    "cloud": (example_with(AWS, cloud="gcp"), ["llmfn:cloud", "'gcp'", "'tencentcloud' or 'aws'"]),
    "region": (example_with(AWS, region="US East"), ["llmfn:region", "'US East'", "us-east-1"]),
    "not a number": (example_with(AWS, memoryMb="lots"), ["llmfn:memoryMb", "'lots'", "valid integer"]),
    "hub repo": (example_with(AWS, modelRepo="qwen"), ["llmfn:modelRepo", "'qwen'", "owner/name"]),
    "unpinned revision": (
        example_with(AWS, modelRevision="main"),
        ["llmfn:modelRevision", "'main'", "40-character"],
    ),
    "model uri": (example_with(AWS, modelUri="http://x/y"), ["llmfn:modelUri", "'http://x/y'", "s3://"]),
    "no model source": (
        example_with(AWS, modelRepo=None, modelRevision=None),
        ["llmfn:modelRepo", "llmfn:modelUri", "model source is required"],
    ),
    "two model sources": (
        example_with(AWS, modelUri="s3://bucket/qwen"),
        ["llmfn:modelUri excludes llmfn:modelRepo"],
    ),
    "no package": (
        example_with(AWS, imageUri=None),
        ["llmfn:imageUri", "llmfn:buildDir", "exactly one package"],
    ),
    "two packages": (example_with(AWS, buildDir="build/layers/aws"), ["exactly one package"]),
    "enterprise image without registry": (
        example_with(TENCENT, imageType="enterprise"),
        ["llmfn:registryId is required", "enterprise"],
    ),
    "lambda memory": (example_with(AWS, memoryMb=20480), ["llmfn:memoryMb = 20480", "128-10240 MB"]),
    "scf memory step": (example_with(TENCENT, memoryMb=1000), ["llmfn:memoryMb = 1000", "multiple of 128"]),
    "gpu on lambda": (example_with(AWS, gpu="A10"), ["llmfn:gpu = 'A10'", "no GPU"]),
    "lambda concurrency": (
        example_with(AWS, concurrencyPerInstance=4),
        ["llmfn:concurrencyPerInstance = 4", "exactly 1 request"],
    ),
    "lambda ephemeral storage": (
        example_with(AWS, ephemeralStorageMb=100),
        ["llmfn:ephemeralStorageMb = 100", "512-10240"],
    ),
    "timeout": (example_with(AWS, timeoutS=901), ["llmfn:timeoutS", "901", "between 1 and 900"]),
    "p95": (example_with(AWS, p95LatencyS=0), ["llmfn:p95LatencyS", "0", "positive number of seconds"]),
    "rates length": (
        example_with(AWS, ratesByHour=[1.0] * 23),
        ["llmfn:ratesByHour", "exactly 24", "got 23"],
    ),
    "negative rate": (
        example_with(AWS, ratesByHour=[1.0] * 23 + [-1.0]),
        ["llmfn:ratesByHour", "-1.0", ">= 0"],
    ),
    "utc offset": (
        example_with(AWS, utcOffsetHours=15),
        ["llmfn:utcOffsetHours", "15", "between -12 and 14"],
    ),
    "headroom": (example_with(AWS, headroom=-0.1), ["llmfn:headroom", "-0.1", "between 0 and 10"]),
    "utilization target": (
        example_with(TENCENT, utilizationTarget=1.0),
        ["llmfn:utilizationTarget", "1.0", "between 0 and 1"],
    ),
    "canary weight": (
        example_with(TENCENT, canaryVersion="3", canaryWeight=1.5),
        ["llmfn:canaryWeight", "1.5", "between 0 and 1"],
    ),
    "tencent scaler state": (
        example_with(TENCENT, scalerStateBucket=None),
        ["llmfn:scalerStateBucket is required on tencentcloud"],
    ),
    "canary half set": (
        example_with(TENCENT, canaryVersion="3"),
        ["llmfn:canaryVersion and llmfn:canaryWeight"],
    ),
    "min above max": (
        example_with(AWS, minInstances=5, maxInstances=2),
        ["llmfn:minInstances = 5", "llmfn:maxInstances = 2", "minInstances <= maxInstances"],
    ),
    "name": (example_with(AWS, name="My_Stack"), ["llmfn:name", "'My_Stack'", "lowercase"]),
    "price": (example_with(AWS, provisionedPricePerGbS=-1), ["llmfn:provisionedPricePerGbS", "-1", ">= 0"]),
    "plain-text api key": (example_with(AWS, apiKey="sk-123"), ["llmfn:apiKey", "plain text", "--secret"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_refused_by_name(case: str) -> None:
    config, fragments = BAD_CONFIGS[case]
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(config)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert "sk-123" not in message  # a secret is never echoed


def test_bad_config_is_a_value_error_the_cli_prints_as_one_line() -> None:
    assert issubclass(StackConfigError, ValueError)


def test_bad_config_builds_no_resource() -> None:
    mocks = install(example_with(AWS, timeoutS=0))

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"), run_name="__main__")

    with pytest.raises(StackConfigError, match="llmfn:timeoutS"):
        program()
    assert mocks.registered == []


def test_secret_api_key_is_accepted() -> None:
    config = parse_stack_config(example_with(AWS, apiKey="sk-123"), secret_keys={"llmfn:apiKey"})
    assert config.api_key is not None and config.api_key.get_secret_value() == "sk-123"
    assert "sk-123" not in repr(config)


def test_every_error_is_listed_at_once() -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(example_with(AWS, timeoutS=0, headroom=-1))
    assert "llmfn:timeoutS" in str(caught.value) and "llmfn:headroom" in str(caught.value)


def test_traffic_from_a_trace_file_uses_its_hourly_profile(traces_dir: Path) -> None:
    trace = traces_dir / "servegen_m-large_per_10min.csv"
    config = parse_stack_config(
        example_with(AWS, ratesByHour=None, trafficTrace=str(trace), maxInstances=1000)
    )
    assert config.hourly_rates == list(forecast_profile(read_trace(trace)).rates_by_hour)
    assert config.reserved_schedule == hourly_schedule(config.hourly_rates, config.rule)
    assert max(config.reserved_schedule) > 100  # ~200 req/s x 4 s: the trace's load, not a default


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"ratesByHour": None}, ["exactly one traffic profile", "llmfn:ratesByHour", "llmfn:trafficTrace"]),
        ({"trafficTrace": "trace.csv"}, ["exactly one traffic profile"]),
        (
            {"ratesByHour": None, "trafficTrace": "no/such/trace.csv"},
            ["llmfn:trafficTrace = 'no/such/trace.csv'", "not found"],
        ),
    ],
)
def test_bad_traffic_profile_is_refused(changes: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(example_with(AWS, **changes))
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_deployment_profile_sets_concurrency_and_the_scalers_cold_start(tmp_path: Path) -> None:
    from infra.common import scaler_policy_config

    profile = tmp_path / "hunyuan.toml"
    profile.write_text("[instance]\nconcurrency = 4\n[cold_start]\nload_s = 2.0\nengine_start_s = 1.5\n")
    config = parse_stack_config(example_with(TENCENT, profile=str(profile), concurrencyPerInstance=None))
    assert config.concurrency_per_instance == 4 and config.profile_cold_start_s == 3.5
    policy = scaler_policy_config(config)
    assert policy["concurrency_per_instance"] == 4 and policy["cold_start_s"] == 3.5
    with pytest.raises(StackConfigError, match="llmfn:concurrencyPerInstance = 2 but llmfn:profile sets"):
        parse_stack_config(example_with(TENCENT, profile=str(profile), concurrencyPerInstance=2))
    with pytest.raises(StackConfigError, match="exactly 1 request"):  # Lambda's rule still applies
        parse_stack_config(example_with(AWS, profile=str(profile), concurrencyPerInstance=None))
    bad = tmp_path / "bad.toml"
    bad.write_text("[instance]\nconcurrency = 0\n")
    with pytest.raises(
        StackConfigError, match=r"llmfn:profile = .*bad\.toml.*instance\.concurrency must be in"
    ):
        parse_stack_config(example_with(TENCENT, profile=str(bad)))
