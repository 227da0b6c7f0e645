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
from tests.infra.mocks import EXAMPLE_SECRETS, REPO_ROOT, example_config, example_with, install, parse_example

TENCENT = "Pulumi.example-tencent.yaml"
AWS = "Pulumi.example-aws.yaml"


def test_config_keys_are_what_users_type() -> None:
    assert config_key("memory_mb") == "llmfn:memoryMb"
    assert config_key("p95_latency_s") == "llmfn:p95LatencyS"
    assert config_key("cloud") == "llmfn:cloud"


def test_keys_of_other_namespaces_are_left_to_their_providers() -> None:
    config = example_config(AWS) | {"aws:region": "eu-west-1", "pulumi:template": "x"}
    assert parse_example(config).region == "us-east-1"


def test_examples_parse_with_their_own_values() -> None:
    tencent = parse_example(example_config(TENCENT))
    assert (tencent.cloud, tencent.memory_mb, tencent.reserved_control) == ("tencentcloud", 16384, "scaler")
    assert tencent.rates_by_hour[15] == 12.0 and tencent.utc_offset_hours == 8
    aws = parse_example(example_config(AWS))
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
    "long model uri": (
        example_with(AWS, modelRepo=None, modelRevision=None, modelUri="s3://bucket/" + "m" * 200),
        ["llmfn:modelUri", "at most 200 characters"],
    ),
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
    "lambda memory": (
        example_with(AWS, memoryMb=10241),
        ["llmfn:memoryMb = 10241", "a standard Lambda function (no llmfn:gpu) allows 128-10240 MB"],
    ),
    "scf memory step": (example_with(TENCENT, memoryMb=1000), ["llmfn:memoryMb = 1000", "multiple of 128"]),
    "gpu type on lambda": (
        example_with(AWS, gpu="A10"),
        ["llmfn:gpu = 'A10'", "must be a map", "Lambda Managed Instances"],
    ),
    "lambda concurrency": (
        example_with(AWS, concurrencyPerInstance=4),
        ["llmfn:concurrencyPerInstance = 4", "exactly 1 request"],
    ),
    "lambda ephemeral storage": (
        example_with(AWS, ephemeralStorageMb=100),
        ["llmfn:ephemeralStorageMb = 100", "512-10240"],
    ),
    "timeout": (example_with(AWS, timeoutS=901), ["llmfn:timeoutS", "901", "between 1 and 900"]),
    "p95": (example_with(AWS, p95LatencyS=0), ["llmfn:p95LatencyS", "0", "number of seconds in (0, 900]"]),
    "absurd p95": (example_with(AWS, p95LatencyS=1e308), ["llmfn:p95LatencyS", "1e+308", "(0, 900]"]),
    "absurd rate": (
        example_with(AWS, ratesByHour=[1e308] * 24),
        ["llmfn:ratesByHour", "requests per second in [0, 1e+06]"],
    ),
    "no api key": (
        example_with(AWS, apiKey=None),
        ["no API key", "pulumi config set --secret llmfn:apiKey", "llmfn:public true"],
    ),
    "schedule on scf": (
        example_with(TENCENT, reservedControl="schedule"),
        ["llmfn:reservedControl = 'schedule' is AWS only", "set 'scaler'"],
    ),
    "tracking on scf": (
        example_with(TENCENT, utilizationTarget=0.7),
        ["llmfn:utilizationTarget = 0.7", "remove llmfn:utilizationTarget"],
    ),
    "zip on scf": (
        example_with(TENCENT, imageUri=None, buildDir="build/layers/scf"),
        ["llmfn:buildDir = '", "build/layers/scf'", "3.10", "llmfn:imageUri"],
    ),
    "scaler handler on scf": (
        example_with(TENCENT, scalerHandler="x.main_handler"),
        ["llmfn:scalerHandler = 'x.main_handler'", "LLMFN_ROLE=scaler"],
    ),
    "reserved control": (
        example_with(AWS, reservedControl="both"),
        ["llmfn:reservedControl", "'both'", "'scaler' or 'schedule'"],
    ),
    "rates length": (
        example_with(AWS, ratesByHour=[1.0] * 23),
        ["llmfn:ratesByHour", "exactly 24", "got 23"],
    ),
    "negative rate": (
        example_with(AWS, ratesByHour=[1.0] * 23 + [-1.0]),
        ["llmfn:ratesByHour", "-1.0", "in [0, "],
    ),
    "utc offset": (
        example_with(AWS, utcOffsetHours=15),
        ["llmfn:utcOffsetHours", "15", "between -12 and 14"],
    ),
    "headroom": (example_with(AWS, headroom=-0.1), ["llmfn:headroom", "-0.1", "between 0 and 10"]),
    "utilization target": (
        example_with(AWS, utilizationTarget=1.0),
        ["llmfn:utilizationTarget", "1.0", "between 0 and 1"],
    ),
    "tencent scaler state": (
        example_with(TENCENT, scalerStateBucket=None),
        ["llmfn:scalerStateBucket is required with llmfn:cloud = tencentcloud"],
    ),
    # SCF gives a function API keys only through its run role: a scaler without one cannot sign a call
    "tencent scaler role": (
        example_with(TENCENT, scalerRole=None),
        ["llmfn:scalerRole is required on tencentcloud", "CAM role"],
    ),
    "canary keys are promote's": (
        example_with(AWS, canaryVersion="3"),
        ["llmfn:canaryVersion", "unknown"],
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
    secrets = set() if case == "plain-text api key" else EXAMPLE_SECRETS
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(config, secrets)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert "sk-123" not in message  # a secret is never echoed


def test_bad_config_is_a_value_error_the_cli_prints_as_one_line() -> None:
    assert issubclass(StackConfigError, ValueError)


def test_bad_config_builds_no_resource() -> None:
    mocks = install(example_with(AWS, timeoutS=0), EXAMPLE_SECRETS)

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
        parse_example(example_with(AWS, timeoutS=0, headroom=-1))
    assert "llmfn:timeoutS" in str(caught.value) and "llmfn:headroom" in str(caught.value)


def test_traffic_from_a_trace_file_uses_its_hourly_profile(traces_dir: Path) -> None:
    trace = traces_dir / "servegen_m-large_per_10min.csv"
    config = parse_example(example_with(AWS, ratesByHour=None, trafficTrace=str(trace), maxInstances=1000))
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
        parse_example(example_with(AWS, **changes))
    for fragment in fragments:
        assert fragment in str(caught.value)


# ----- property: any bad value is a clear error naming its key, never a traceback -----
from hypothesis import example as hypothesis_example  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from infra.common import reserved_gb_seconds_per_day  # noqa: E402
from infra.config import StackConfig  # noqa: E402

_KEYS = sorted(StackConfig.model_fields)
_VALUES = st.one_of(
    st.none(),  # None removes the key
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["aws", "tencentcloud", "scaler", "schedule", "true", "1e308", "-1", "[1,2]", "{}"]),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=25),
    st.lists(st.floats(min_value=0, max_value=1e308), min_size=24, max_size=24),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None)
@hypothesis_example(example=AWS, key="rates_by_hour", value=[1e308] * 24)  # issue 13.9: OverflowError
@hypothesis_example(example=AWS, key="p95_latency_s", value=1e308)
@hypothesis_example(example=TENCENT, key="max_instances", value=10**12)
@given(
    example=st.sampled_from([AWS, TENCENT]),
    key=st.sampled_from(_KEYS),
    value=_VALUES,
)
def test_any_bad_value_is_a_clear_error_naming_its_key(example: str, key: str, value: Any) -> None:
    typed = config_key(key)
    config = example_with(example, **{typed.split(":", 1)[1]: value})
    try:
        parsed = parse_stack_config(config, EXAMPLE_SECRETS)
    except StackConfigError as error:
        message = str(error)
        assert message.startswith("invalid stack configuration:")
        assert typed in message, f"{typed} not named in: {message}"
        return
    # accepted: everything the stack derives from it must compute (no OverflowError later)
    schedule = parsed.reserved_schedule
    assert len(schedule) == 24 and all(0 <= n <= parsed.max_instances for n in schedule)
    assert reserved_gb_seconds_per_day(parsed) >= 0


def test_a_deployment_profile_sets_concurrency_and_the_scalers_cold_start(tmp_path: Path) -> None:
    from infra.common import scaler_policy_config

    profile = tmp_path / "hunyuan.toml"
    profile.write_text("[instance]\nconcurrency = 4\n[cold_start]\nload_s = 2.0\nengine_start_s = 1.5\n")
    config = parse_example(example_with(TENCENT, profile=str(profile), concurrencyPerInstance=None))
    assert config.concurrency_per_instance == 4 and config.profile_cold_start_s == 3.5
    policy = scaler_policy_config(config)
    assert policy["concurrency_per_instance"] == 4 and policy["cold_start_s"] == 3.5
    with pytest.raises(StackConfigError, match="llmfn:concurrencyPerInstance = 2 but llmfn:profile sets"):
        parse_example(example_with(TENCENT, profile=str(profile), concurrencyPerInstance=2))
    with pytest.raises(StackConfigError, match="exactly 1 request"):  # Lambda's rule still applies
        parse_example(example_with(AWS, profile=str(profile), concurrencyPerInstance=None))
    bad = tmp_path / "bad.toml"
    bad.write_text("[instance]\nconcurrency = 0\n")
    with pytest.raises(
        StackConfigError, match=r"llmfn:profile = .*bad\.toml.*instance\.concurrency must be in"
    ):
        parse_example(example_with(TENCENT, profile=str(bad)))
