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
    "policy": (
        example_with(AWS, policy="oracle"),
        ["llmfn:policy", "'oracle'", "kpa, hybrid"],
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

GPU = "Pulumi.example-aws-gpu.yaml"
_GPU_MAP = {
    "acceleratorMemoryGb": 24,
    "instanceTypes": ["g6.xlarge", "g6.2xlarge"],
    "subnetIds": ["subnet-0123456789abcdef0"],
    "securityGroupIds": ["sg-0123456789abcdef0"],
    "maxVcpuCount": 64,
    "memoryGibPerVcpu": 4,
}
_SHA = "sha256:" + "0f" * 32
_TCR_IMAGE = example_config(TENCENT)["llmfn:imageUri"]
_PINNED_SCF_IMAGE = "ccr.ccs.tencentyun.com/llmfn/llmfn-serve:0.1.0@" + _SHA

# Stack values the clouds refuse at deploy (issue 22.11, 19.7-19.12, 20.5): each passed validation before.
# (config, fragments: the key as typed, the value, what is allowed)
CLOUD_REFUSED = {
    # a `$` anchor matches before a trailing newline: full matches now
    "name with newline": (example_with(AWS, name="qwen3\n"), ["llmfn:name", "'qwen3\\n'", "lowercase"]),
    "region with newline": (example_with(AWS, region="us-east-1\n"), ["llmfn:region", "'us-east-1\\n'"]),
    "hub repo with newline": (example_with(AWS, modelRepo="Qwen/Qwen3\n"), ["llmfn:modelRepo", "owner/name"]),
    "revision with newline": (
        example_with(AWS, modelRevision="0123456789abcdef0123456789abcdef01234567\n"),
        ["llmfn:modelRevision", "40-character"],
    ),
    # regions from the SDKs' lists (botocore's partitions; SCF's region table)
    "tencent region on aws": (
        example_with(AWS, region="ap-guangzhou"),
        ["llmfn:region = 'ap-guangzhou'", "not an aws region (it is a Tencent Cloud region)", "us-east-1"],
    ),
    "aws region on tencent": (
        example_with(TENCENT, region="us-east-1"),
        ["llmfn:region = 'us-east-1'", "not a tencentcloud region (it is an AWS region)", "ap-guangzhou"],
    ),
    "zone as region": (
        example_with(TENCENT, region="ap-guangzhou-3"),
        ["llmfn:region = 'ap-guangzhou-3'", "availability zone of ap-guangzhou", "set ap-guangzhou"],
    ),
    "unknown aws region": (
        example_with(AWS, region="us-east-9"),
        ["llmfn:region = 'us-east-9'", "not an aws region"],
    ),
    # S3 bucket naming rules: reserved prefixes and suffixes, IP addresses
    "name with xn-- prefix": (
        example_with(AWS, name="xn--qwen"),
        ["llmfn:name = 'xn--qwen'", "'xn--'", "S3"],
    ),
    "name with sthree- prefix": (example_with(AWS, name="sthree-qwen"), ["llmfn:name", "'sthree-'"]),
    "name with amzn-s3-demo- prefix": (
        example_with(AWS, name="amzn-s3-demo-x"),
        ["llmfn:name", "'amzn-s3-demo-'"],
    ),
    "state bucket -s3alias": (
        example_with(AWS, scalerStateBucket="state-s3alias"),
        ["llmfn:scalerStateBucket = 'state-s3alias'", "'-s3alias'"],
    ),
    "state bucket --ol-s3": (
        example_with(AWS, scalerStateBucket="state--ol-s3"),
        ["llmfn:scalerStateBucket", "'--ol-s3'"],
    ),
    "state bucket ip address": (
        example_with(AWS, scalerStateBucket="192.168.5.4"),
        ["llmfn:scalerStateBucket = '192.168.5.4'", "IP address"],
    ),
    "model uri bucket prefix": (
        example_with(AWS, modelRepo=None, modelRevision=None, modelUri="s3://xn--models/qwen"),
        ["llmfn:modelUri = 's3://xn--models/qwen'", "bucket 'xn--models'", "'xn--'"],
    ),
    # COS buckets are <name>-<appid>
    "cos state bucket without appid": (
        example_with(TENCENT, scalerStateBucket="llmfn-state"),
        ["llmfn:scalerStateBucket = 'llmfn-state'", "'<name>-<appid>'"],
    ),
    "cos model bucket without appid": (
        example_with(TENCENT, modelRepo=None, modelRevision=None, modelUri="cos://models/qwen"),
        ["llmfn:modelUri = 'cos://models/qwen'", "bucket 'models'", "APPID"],
    ),
    # SCF memory by function kind
    "scf memory above 3072 without gpu": (
        example_with(TENCENT, gpu=None),
        [
            "llmfn:memoryMb = 16384",
            "ordinary SCF function (no llmfn:gpu) allows 64 or 128-3072 MB",
            "llmfn:gpu",
        ],
    ),
    "scf memory 100": (
        example_with(TENCENT, gpu=None, memoryMb=100),
        ["llmfn:memoryMb = 100", "64 or 128-3072"],
    ),
    "scf gpu memory step": (
        example_with(TENCENT, memoryMb=1000),
        ["llmfn:memoryMb = 1000", "GPU SCF function"],
    ),
    # images: ECR in the function's region on Lambda; tag@sha256 on SCF
    "lambda image not ecr": (
        example_with(AWS, imageUri="docker.io/library/llmfn:1"),
        ["llmfn:imageUri = 'docker.io/library/llmfn:1'", "Amazon ECR image"],
    ),
    "lambda image in another region": (
        example_with(AWS, imageUri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/llmfn-serve:0.1.0"),
        ["llmfn:imageUri", "ECR region eu-west-1", "us-east-1", "function's region"],
    ),
    "scf image by tag": (
        example_with(TENCENT, imageUri="ccr.ccs.tencentyun.com/llmfn/llmfn-serve:0.1.0"),
        ["llmfn:imageUri = 'ccr.ccs.tencentyun.com/llmfn/llmfn-serve:0.1.0'", ":<tag>@sha256:<digest>"],
    ),
    # handlers (botocore: max 128, pattern [^\s]+)
    "handler with space": (
        example_with(AWS, handler="functions.entry handler"),
        ["llmfn:handler = 'functions.entry handler'", "without whitespace"],
    ),
    "handler too long": (example_with(AWS, handler="h" * 129), ["llmfn:handler", "1-128 characters"]),
    # Tencent names
    "scf namespace": (
        example_with(TENCENT, namespace="my space"),
        ["llmfn:namespace = 'my space'", "2-60 letters"],
    ),
    "scf namespace digit first": (example_with(TENCENT, namespace="1ns"), ["llmfn:namespace = '1ns'"]),
    "cam role": (
        example_with(TENCENT, scalerRole="llmfn scaler"),
        ["llmfn:scalerRole = 'llmfn scaler'", "CAM role"],
    ),
    "tcr instance id": (
        example_with(TENCENT, imageType="enterprise", registryId="tcr-1"),
        ["llmfn:registryId = 'tcr-1'", "tcr-ab12cd34"],
    ),
    # SCF's /tmp (512 MB) cannot hold a Hub download larger than it
    "hub model above scf's /tmp": (
        example_with(TENCENT, modelSizeMb=7673),
        ["llmfn:modelSizeMb = 7673 with llmfn:modelRepo", "512 MB", "llmfn:modelUri = cos://", "CFS"],
    ),
    "model size": (example_with(AWS, modelSizeMb=0), ["llmfn:modelSizeMb = 0", "at least 1 MB"]),
    # SCF's region-wide function concurrency quota
    "scf quota": (
        example_with(TENCENT, maxInstances=20),
        [
            "llmfn:maxInstances = 20 x llmfn:memoryMb = 16384 is 327,680 MB",
            "128,000 MB",
            "maxInstances <= 7",
            "llmfn:concurrencyQuotaMb",
        ],
    ),
    "scf quota below default": (
        example_with(TENCENT, concurrencyQuotaMb=1000),
        ["llmfn:concurrencyQuotaMb = 1000", "at least 128,000 MB"],
    ),
    # an empty, whitespace or multi-line key is no key (the value is never echoed)
    "empty api key": (example_with(AWS, apiKey=""), ["llmfn:apiKey = <secret>", "empty or whitespace"]),
    "whitespace api key": (
        example_with(AWS, apiKey="   "),
        ["llmfn:apiKey = <secret>", "empty or whitespace"],
    ),
    "api key with newline": (
        example_with(AWS, apiKey="sk-123\n"),
        ["llmfn:apiKey = <secret>", "control character"],
    ),
    "api key with space": (example_with(AWS, apiKey="sk 123"), ["llmfn:apiKey = <secret>", "whitespace"]),
    "api key above lambda's 4 KB": (
        example_with(AWS, apiKey="k" * 4000),
        ["llmfn:apiKey = <secret> (4000 bytes)", "Lambda allows 4096 bytes (4 KB)", "at most 3"],
    ),
    # Lambda Managed Instances: three environments at publish, and maxInstances
    "lmi vcpus below publish": (
        example_with(GPU, gpu=_GPU_MAP | {"maxVcpuCount": 8}),
        ["llmfn:gpu.maxVcpuCount = 8", "3 execution environments", "3 x 4 = 12", "g6.xlarge"],
    ),
    "lmi vcpus below max instances": (
        example_with(GPU, gpu=_GPU_MAP | {"maxVcpuCount": 12}, maxInstances=8),
        ["llmfn:gpu.maxVcpuCount = 12 with llmfn:maxInstances = 8", "at least 16 vCPUs"],
    ),
}
BAD_CONFIGS.update(CLOUD_REFUSED)


def test_values_the_clouds_accept_still_pass() -> None:
    """The rules refuse only what the clouds refuse: their boundary values are accepted."""
    assert (
        parse_example(example_with(TENCENT, maxInstances=20, concurrencyQuotaMb=400_000)).max_instances == 20
    )
    assert parse_example(example_with(TENCENT, gpu=None, memoryMb=64)).memory_mb == 64
    assert parse_example(example_with(TENCENT, gpu=None, memoryMb=3072)).memory_mb == 3072
    assert parse_example(example_with(TENCENT, imageUri=_PINNED_SCF_IMAGE)).image_uri == _PINNED_SCF_IMAGE
    assert "@sha256:" in _TCR_IMAGE  # the example pins its image
    assert (
        parse_example(example_with(TENCENT, region="ap-shanghai", namespace="llmfn_ns-1")).region
        == "ap-shanghai"
    )
    assert (
        parse_example(
            example_with(
                AWS,
                region="cn-north-1",
                imageUri=("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/llmfn-serve@" + _SHA),
            )
        ).region
        == "cn-north-1"
    )
    assert parse_example(example_with(AWS, apiKey="k" * 3000)).api_key is not None
    assert parse_example(example_with(TENCENT, modelSizeMb=400)).model_size_mb == 400  # fits /tmp
    assert parse_example(example_with(AWS, modelSizeMb=7673)).model_size_mb == 7673  # Lambda: 10 GB /tmp
    assert parse_example(example_with(GPU, gpu=_GPU_MAP | {"maxVcpuCount": 12}, maxInstances=6)) is not None


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
    # what the clouds refuse although a `$`-anchored pattern passed it (issue 22.11)
    st.sampled_from(["qwen3\n", "us-east-1\n", "ap-guangzhou-3", "xn--a", "a-s3alias", "", " ", "a\nb"]),
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
