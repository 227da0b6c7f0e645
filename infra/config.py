"""The stack configuration schema: every ``llmfn:*`` key, validated once before any resource is built.

Keys are the names users type in ``pulumi config set llmfn:<key> <value>`` (camelCase); structured
values (lists, maps) are given with ``--path`` or as JSON, as Pulumi stores them. A bad value raises
:class:`StackConfigError` naming the key as typed, the value and what is allowed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.clouds import CLOUD_PLUGINS
from core.contract import LAMBDA_INFERENCE_HANDLER, StackCloud
from core.errors import InputError
from core.revision import revision_problem
from core.secrets import ApiKey
from infra import cloud_names
from infra.clouds import CloudRules, rules_for
from infra.clouds.aws.gpu.config import MAX_CONCURRENCY_PER_ENVIRONMENT, AwsGpuConfig
from infra.image import ImageBuild, parse_image_build, project_path
from scaling.bounds import bounds_problem
from scaling.plan import (
    HOURS_PER_DAY,
    ReservedRule,
    ScheduleChange,
    hourly_schedule,
    lmi_floor_schedule,
    schedule_changes,
)
from scaling.policies import RUNNABLE_POLICY_NAMES

CONFIG_NAMESPACE = "llmfn"
SECRET_KEYS = frozenset({"apiKey"})

# Entry points in the packages of functions/ (overridable per stack, e.g. for a custom image).
DEFAULT_LAMBDA_HANDLER = LAMBDA_INFERENCE_HANDLER
MAX_TIMEOUT_S = 900  # both SCF and Lambda stop a request at 900 s
MAX_INSTANCES = 10_000  # above every account's concurrency quota on either cloud
MAX_MODEL_URI_CHARS = 200  # + "llmfn model-revision=" stays within Lambda's 256-character Description
MAX_RATE_RPS = 1e6  # far above any function quota; larger values are typos (and overflow the plan)
# The region's function concurrency quota, MB: provisioned concurrency draws on it; "128,000 MB" in large
# regions (SCF "配额限制", document 583/11637); raisable by a ticket, hence llmfn:concurrencyQuotaMb.
SCF_CONCURRENCY_QUOTA_MB = 128_000
# Full matches (re.fullmatch): a `$` anchor also matches before a trailing newline ("qwen3\n").
_HUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
# Names with one rule each, whatever the cloud (infra.cloud_names cites each rule's document).
_NAME_RULES = {
    "namespace": cloud_names.scf_namespace_problem,
    "scaler_role": cloud_names.cam_role_problem,
    "registry_id": cloud_names.tcr_instance_problem,
}
_MODEL_URI = re.compile(r"(?P<scheme>s3|cos)://(?P<bucket>[^/]+)/(?P<key>.+)", re.DOTALL)


class StackConfigError(InputError):
    """The stack configuration is invalid; the message names each bad key, its value and what is allowed."""


def config_key(field_name: str) -> str:
    """The ``llmfn:camelCase`` key users type for a schema field (``memory_mb`` -> ``llmfn:memoryMb``)."""
    head, *rest = field_name.split("_")
    return f"{CONFIG_NAMESPACE}:{head}{''.join(part.capitalize() for part in rest)}"


def _camel(field_name: str) -> str:
    return config_key(field_name).split(":", 1)[1]


class StackConfig(BaseModel):
    """One stack's deployment. Units in names: ``_mb`` MiB, ``_s`` seconds, ``_rps`` requests/second."""

    model_config = ConfigDict(alias_generator=_camel, populate_by_name=True, extra="forbid", frozen=True)

    cloud: StackCloud = Field(
        description="A registered cloud (core.clouds.CLOUD_PLUGINS), by its stack name."
    )
    region: str = Field(description="Cloud region, e.g. ap-guangzhou or us-east-1.")
    name: str = Field("llmfn", description="Prefix of every resource name: lowercase, digits, '-'.")
    namespace: str = Field("default", description="SCF namespace (Tencent only).")

    # Model source: a Hub repo pinned to a commit, or an S3 / COS URI.
    model_repo: str | None = None
    model_revision: str | None = None
    model_uri: str | None = None
    model_size_mb: int | None = Field(None, description="The checkpoint's size (MB), as the Hub lists it.")
    engine: Literal["transformers", "vllm"] = "transformers"

    # Package: a container image, or the zips built by `llmfn layer build` (a build directory).
    image_uri: str | None = None
    image: dict[str, Any] | None = Field(None, description="Build and push the image (infra.image).")
    image_type: Literal["personal", "enterprise"] = "personal"
    registry_id: str | None = None
    build_dir: Path | None = None
    handler: str = DEFAULT_LAMBDA_HANDLER
    scaler_handler: str | None = Field(None, description="Default: functions.scaler.handler's entry point.")

    # Instance shape.
    memory_mb: int
    gpu: str | dict[str, Any] | None = Field(
        None,
        description="SCF: GPU type (enabled per account). AWS: Lambda Managed Instances (infra.clouds.aws.gpu.config).",
    )
    timeout_s: int = 300
    ephemeral_storage_mb: int = 10240
    concurrency_per_instance: int = 1

    # The policy the scaler runs (a name of scaling.policies' registry) and the traffic it plans with.
    policy: str = "hybrid"
    p95_latency_s: float
    rates_by_hour: list[float] | None = None
    traffic_trace: Path | None = Field(None, description="A trace file whose hourly profile is the traffic.")
    utc_offset_hours: int = 0
    headroom: float = 0.2
    # Bounds on the reserved count: PolicyConfig's / ReservedRule's min_reserved / max_reserved; the
    # field names give the user-facing keys llmfn:minInstances / llmfn:maxInstances.
    min_instances: int = 0
    max_instances: int = 50
    utilization_target: float | None = None
    profile: Path | None = Field(
        None,
        description="A deployment profile (JSON/TOML, as `llmfn simulate --profile`): its instance "
        "concurrency and cold start are what the stack plans with.",
    )

    # Who moves the reserved floor: "scaler" (the scaler function, every minute) or "schedule" (native
    # scheduled actions, AWS only). Never both on one target: see infra/README.md, "One owner per setting".
    reserved_control: Literal["scaler", "schedule"] = "scaler"
    # Serve /v1/* without an API key (the function then accepts any caller): must be said explicitly.
    public: bool = False

    provisioned_price_per_gb_s: float | None = None
    error_alarm_threshold: int = 5
    scaler_state_bucket: str | None = None
    scaler_role: str | None = Field(None, description="SCF: CAM role the scaler runs as (its API keys).")
    api_key: ApiKey | None = None  # core.secrets: the one API-key rule
    # SCF only: the region's function concurrency quota (MB) when Tencent has raised it for the account.
    concurrency_quota_mb: int = SCF_CONCURRENCY_QUOTA_MB

    @field_validator("region")
    @classmethod
    def _region(cls, value: str, info: ValidationInfo) -> str:
        if not _REGION.fullmatch(value):
            raise InputError("must be a region id such as ap-guangzhou or us-east-1")
        cloud = info.data.get("cloud")
        if cloud is None:  # llmfn:cloud is refused on its own
            return value
        problem = rules_for(cloud).region_problem(value)
        if problem:
            raise InputError(problem)
        return value

    @field_validator("cloud", mode="plain")
    @classmethod
    def _cloud(cls, value: Any) -> str:
        """A cloud with a row in the registry (``core.clouds``), by its stack name: the row decides, not
        the annotation, so a cloud is its row and its folder; refused by name otherwise, in the words
        pydantic uses for a Literal (the annotation's names first, as they always were listed)."""
        rows = [row.stack_cloud for row in CLOUD_PLUGINS.values()]
        if isinstance(value, str) and value in rows:
            return value
        order = list(get_args(StackCloud))
        allowed = [repr(n) for n in sorted(rows, key=lambda n: order.index(n) if n in order else len(order))]
        expected = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
        raise InputError(f"Input should be {expected}")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise InputError(
                "must be 2-40 characters: lowercase letters, digits and '-', starting with a letter"
            )
        return value

    @field_validator(*_NAME_RULES)
    @classmethod
    def _cloud_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Names with one documented rule each (see _NAME_RULES)."""
        problem = None if value is None else _NAME_RULES[str(info.field_name)](value)
        if problem:
            raise InputError(problem)
        return value

    @field_validator("scaler_state_bucket")
    @classmethod
    def _state_bucket(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        cloud = info.data.get("cloud")
        if cloud is None:  # llmfn:cloud is refused on its own
            return value
        problem = rules_for(cloud).state_bucket_problem(value)
        if problem:
            raise InputError(problem)
        return value

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        if value not in RUNNABLE_POLICY_NAMES:
            raise InputError(f"must be one of: {', '.join(RUNNABLE_POLICY_NAMES)} (the scaler's policies)")
        return value

    @field_validator("concurrency_quota_mb")
    @classmethod
    def _quota(cls, value: int) -> int:
        if value < SCF_CONCURRENCY_QUOTA_MB:
            raise InputError(
                f"must be at least {SCF_CONCURRENCY_QUOTA_MB:,} MB (SCF's default quota; set it only when "
                "Tencent raised your region's function concurrency quota)"
            )
        return value

    @field_validator("model_repo")
    @classmethod
    def _model_repo(cls, value: str | None) -> str | None:
        if value is not None and not _HUB_REPO.fullmatch(value):
            raise InputError("must be a Hugging Face repo id 'owner/name', e.g. Qwen/Qwen3-4B-Instruct-2507")
        return value

    @field_validator("model_revision")
    @classmethod
    def _model_revision(cls, value: str | None) -> str | None:
        problem = None if value is None else revision_problem(value, commit=True)
        if problem:
            raise InputError(problem)
        return value

    @field_validator("model_uri")
    @classmethod
    def _model_uri(cls, value: str | None) -> str | None:
        found = None if value is None else _MODEL_URI.fullmatch(value)
        if value is not None and (found is None or any(ch.isspace() for ch in value)):
            raise InputError("must be s3://bucket/prefix or cos://bucket-appid/prefix")
        if found is not None:
            bucket = found["bucket"]
            problem = (
                cloud_names.s3_bucket_problem(bucket)
                if found["scheme"] == "s3"
                else cloud_names.cos_bucket_problem(bucket)
            )
            if problem:
                raise InputError(f"bucket {bucket!r} {problem}")
        if value is not None and len(value) > MAX_MODEL_URI_CHARS:
            raise InputError(
                f"must be at most {MAX_MODEL_URI_CHARS} characters (it names the published versions, "
                "whose description Lambda caps at 256)"
            )
        return value

    @field_validator("build_dir", "traffic_trace", "profile")
    @classmethod
    def _project_relative(cls, value: Path | None) -> Path | None:
        """A relative path is the project directory's (where Pulumi.yaml is), as ``llmfn:image``'s
        paths are: Pulumi runs the program in infra/ (infra.image.project_path)."""
        return None if value is None else Path(project_path(str(value)))

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, value: int) -> int:
        if not 1 <= value <= MAX_TIMEOUT_S:
            raise InputError("must be between 1 and 900 seconds (both SCF and Lambda stop at 900 s)")
        return value

    @field_validator("concurrency_per_instance")
    @classmethod
    def _concurrency(cls, value: int) -> int:
        """The largest any cloud allows (Lambda Managed Instances'); each cloud's rules narrow it."""
        if not 1 <= value <= MAX_CONCURRENCY_PER_ENVIRONMENT:
            raise InputError(
                f"must be between 1 and {MAX_CONCURRENCY_PER_ENVIRONMENT} concurrent requests per instance"
            )
        return value

    @field_validator("p95_latency_s")
    @classmethod
    def _p95(cls, value: float) -> float:
        if not (0 < value <= MAX_TIMEOUT_S and math.isfinite(value)):
            raise InputError(
                f"must be a number of seconds in (0, {MAX_TIMEOUT_S}] (the P95 time in system; "
                "no function runs longer)"
            )
        return value

    @field_validator("rates_by_hour")
    @classmethod
    def _rates(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return value
        if len(value) != HOURS_PER_DAY:
            raise InputError(f"must list exactly 24 hourly rates (req/s, hour 0 first), got {len(value)}")
        if not all(0 <= r <= MAX_RATE_RPS and math.isfinite(r) for r in value):
            raise InputError(
                f"every hourly rate must be a number of requests per second in [0, {MAX_RATE_RPS:g}]"
            )
        return value

    @field_validator("utc_offset_hours")
    @classmethod
    def _offset(cls, value: int) -> int:
        if not -12 <= value <= 14:
            raise InputError("must be an offset from UTC between -12 and 14 hours")
        return value

    @field_validator("headroom")
    @classmethod
    def _headroom(cls, value: float) -> float:
        if not (0 <= value <= 10 and math.isfinite(value)):
            raise InputError("must be a fraction between 0 and 10 (0.2 = 20 % over Little's law)")
        return value

    @field_validator("utilization_target")
    @classmethod
    def _utilization(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise InputError("must be strictly between 0 and 1 (0.7 = keep 70 % of reserved capacity busy)")
        return value

    @field_validator("provisioned_price_per_gb_s")
    @classmethod
    def _price(cls, value: float | None) -> float | None:
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise InputError("must be a price >= 0 per GB-second")
        return value

    @field_validator("error_alarm_threshold")
    @classmethod
    def _errors(cls, value: int) -> int:
        if value < 1:
            raise InputError("must be at least 1 error per minute")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        problems = (
            self._source_problems()
            + self.rules.name_problems(self)
            + self._package_problems()
            + self.rules.shape_problems(self)
            + self._scaling_problems()
        )
        if problems:
            raise InputError("; ".join(problems))
        return self

    @property
    def rules(self) -> CloudRules:
        """This stack's cloud rules (``infra.clouds.<cloud>.config``, through its registry row)."""
        return rules_for(self.cloud)

    def _image_uri_problems(self) -> list[str]:
        if self.image_uri is None:
            return []
        problem = self.rules.image_uri_problem(self.image_uri, self.region)
        return [f"llmfn:imageUri = {self.image_uri!r} {problem}"] if problem else []

    def _source_problems(self) -> list[str]:
        if self.model_size_mb is not None and self.model_size_mb < 1:
            return [f"llmfn:modelSizeMb = {self.model_size_mb}: must be the checkpoint's size, at least 1 MB"]
        problems = self.rules.source_problems(self)
        if problems:
            return problems
        if self.model_uri is not None:
            if self.model_repo is not None or self.model_revision is not None:
                return [
                    "llmfn:modelUri excludes llmfn:modelRepo / llmfn:modelRevision: give one model source"
                ]
            return []
        if self.model_repo is None or self.model_revision is None:
            return [
                "a model source is required: llmfn:modelRepo with llmfn:modelRevision (a commit sha), "
                "or llmfn:modelUri"
            ]
        return []

    def _package_problems(self) -> list[str]:
        problems = self._image_uri_problems() + self.rules.environment_problems(self)
        return problems + self._package_choice_problems()

    def _package_choice_problems(self) -> list[str]:
        early = self.rules.package_problems(self)
        if early:
            return early
        if sum(x is not None for x in (self.image_uri, self.image, self.build_dir)) != 1:
            return [
                "give exactly one package: llmfn:imageUri (a container image), llmfn:image (build and push "
                "one) or llmfn:buildDir (the output directory of `llmfn layer build`)"
            ]
        if self.image is not None:
            build, problems = parse_image_build(self.image)
            problems = self.rules.image_problems(self, build, problems)
            if problems:
                return problems
        return self.rules.registry_problems(self)

    def _scaling_problems(self) -> list[str]:
        problems = []
        if (self.rates_by_hour is None) == (self.traffic_trace is None):
            problems.append(
                "give exactly one traffic profile: llmfn:ratesByHour (24 req/s values, hour 0 first) or "
                "llmfn:trafficTrace (a trace file, see `llmfn simulate`)"
            )
        if bounds_problem(self.min_instances, self.max_instances) or self.max_instances > MAX_INSTANCES:
            problems.append(
                f"llmfn:minInstances = {self.min_instances}, llmfn:maxInstances = {self.max_instances}: "
                f"need 0 <= minInstances <= maxInstances <= {MAX_INSTANCES}"
            )
        problems.extend(self.rules.scaling_problems(self))
        if self.api_key is None and not self.public:
            problems.append(
                "no API key: set one with `pulumi config set --secret llmfn:apiKey <key>`, or serve "
                "without one on purpose with `pulumi config set llmfn:public true`"
            )
        return problems

    @cached_property
    def hourly_rates(self) -> list[float]:
        """Mean arrival rate (req/s) per hour of day, hour 0 first: configured, or the trace's profile
        exactly as ``llmfn plan --trace`` makes it (a next-day forecast by the backtest's winner for
        traces of three days or more, else the mean rate per hour of day).

        Raises FileNotFoundError / ValueError when the trace cannot be read.
        """
        if self.rates_by_hour is not None:
            return self.rates_by_hour
        from scaling.forecasting import forecast_profile
        from scaling.traces import read_trace

        assert self.traffic_trace is not None
        return list(forecast_profile(read_trace(self.traffic_trace)).rates_by_hour)

    @cached_property
    def burst_rates_by_hour(self) -> list[float] | None:
        """Each hour's highest 5-minute rate of the traffic trace (req/s; the LMI floor's doubling
        term, as ``llmfn plan --trace``), None with configured rates."""
        if self.traffic_trace is None:
            return None
        from scaling.forecasting import burst_rates_by_hour
        from scaling.traces import read_trace

        return burst_rates_by_hour(read_trace(self.traffic_trace))

    @cached_property
    def aws_gpu(self) -> AwsGpuConfig | None:
        """The Lambda Managed Instances GPU settings (``llmfn:gpu`` on AWS: ``infra.clouds.aws.gpu.config``),
        None elsewhere (this cloud's rules' ``gpu_config``)."""
        return self.rules.gpu_config(self)

    @cached_property
    def image_build(self) -> ImageBuild | None:
        """How the stack builds and pushes the function image (``llmfn:image``), None when not asked."""
        if self.image is None:
            return None
        build, problems = parse_image_build(self.image)
        return build if not self.rules.image_problems(self, build, problems) else None

    @cached_property
    def profile_cold_start_s(self) -> float | None:
        """The profile's cold start, seconds (None without a profile or without a cold start in it)."""
        if self.profile is None:
            return None
        from scaling.profile import read_profile

        cold = read_profile(self.profile).cold_start
        return None if cold is None else cold.total_s

    @property
    def rule(self) -> ReservedRule:
        """The hybrid rule's parameters for :func:`scaling.plan.hourly_schedule`."""
        return ReservedRule(
            p95_latency_s=self.p95_latency_s,
            concurrency_per_instance=self.concurrency_per_instance,
            headroom=self.headroom,
            min_reserved=self.min_instances,
            max_reserved=self.max_instances,
        )

    @property
    def reserved_schedule(self) -> list[int]:
        """Reserved instances for each hour of day (profile time zone), hour 0 first; on Lambda GPU the
        MinExecutionEnvironments floor, ``scaling.plan.lmi_floor_schedule`` (as the scaler's)."""
        if self.aws_gpu is not None:
            return lmi_floor_schedule(self.hourly_rates, self.rule, self.burst_rates_by_hour)
        return hourly_schedule(self.hourly_rates, self.rule)

    @property
    def schedule_changes(self) -> list[ScheduleChange]:
        """The hours at which the reserved count changes (what becomes crons)."""
        return schedule_changes(self.reserved_schedule)

    @property
    def function_name(self) -> str:
        """The inference function's name."""
        return f"{self.name}-infer"

    @property
    def scaler_name(self) -> str:
        """The scaler function's name."""
        return f"{self.name}-scaler"

    @property
    def scaler_entry_point(self) -> str:
        """The scaler's handler: configured, else this cloud's entry point in functions.scaler.handler."""
        return self.scaler_handler or self.rules.default_scaler_handler

    @property
    def model_source(self) -> str:
        """Where the function loads weights from: a Hub repo id or an S3 / COS URI."""
        return self.model_uri if self.model_uri is not None else str(self.model_repo)

    @property
    def price_per_gb_s(self) -> float | None:
        """Provisioned price per GB-s: configured, else the cloud's list price (Lambda's on AWS), else unknown."""
        if self.provisioned_price_per_gb_s is not None:
            return self.provisioned_price_per_gb_s
        return self.rules.list_price_per_gb_s


def _parse_value(raw: Any) -> Any:
    """Pulumi hands every value over as a string; structured ones (lists, maps) as JSON."""
    if isinstance(raw, str) and raw.strip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> str:
    parts = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:
            parts.append(message)
            continue
        key = f"{CONFIG_NAMESPACE}:{err['loc'][0]}"
        if err["type"] == "missing":
            parts.append(f"{key} is required: set it with `pulumi config set {key} <value>`")
            continue
        shown = (
            "<secret>"
            if err["loc"][0] in SECRET_KEYS
            else repr(values.get(str(err["loc"][0]), err.get("input")))
        )
        parts.append(f"{key} = {shown}: {message}")
    return "invalid stack configuration: " + "; ".join(parts)


def _with_profile(config: StackConfig, values: dict[str, Any], prefix: str) -> StackConfig:
    """Read ``llmfn:profile`` now; its instance concurrency fills ``llmfn:concurrencyPerInstance``."""
    from scaling.profile import read_profile

    try:
        profile = read_profile(config.profile)  # type: ignore[arg-type]
        config.profile_cold_start_s  # noqa: B018
    except (OSError, ValueError) as exc:
        raise StackConfigError(
            f"invalid stack configuration: {prefix}profile = {values.get('profile')!r}: {exc}"
        ) from None
    if profile.concurrency is None:
        return config
    given = values.get("concurrencyPerInstance")
    if given is not None and int(given) != profile.concurrency:
        raise StackConfigError(
            f"invalid stack configuration: {prefix}concurrencyPerInstance = {given!r} but {prefix}profile "
            f"sets instance.concurrency = {profile.concurrency}: keep one"
        )
    try:
        return StackConfig.model_validate({**values, "concurrencyPerInstance": profile.concurrency})
    except ValidationError as exc:
        raise StackConfigError(_describe(exc, values)) from None


def parse_stack_config(raw_config: Mapping[str, Any], secret_keys: Collection[str] = ()) -> StackConfig:
    """Validate ``{"llmfn:key": value}`` (keys of other namespaces are ignored) into a StackConfig.

    ``secret_keys`` are the full keys Pulumi holds encrypted; ``llmfn:apiKey`` must be one of them.
    Raises StackConfigError naming every bad key.
    """
    prefix = f"{CONFIG_NAMESPACE}:"
    values = {k.removeprefix(prefix): _parse_value(v) for k, v in raw_config.items() if k.startswith(prefix)}
    known = {_camel(name) for name in StackConfig.model_fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise StackConfigError(
            "invalid stack configuration: unknown key(s) "
            + ", ".join(prefix + k for k in unknown)
            + "; known keys: "
            + ", ".join(prefix + k for k in sorted(known))
        )
    for key in SECRET_KEYS:
        if key in values and prefix + key not in secret_keys:
            raise StackConfigError(
                f"invalid stack configuration: {prefix}{key} is stored in plain text; set it with "
                f"`pulumi config set --secret {prefix}{key} <value>`"
            )
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as exc:
        raise StackConfigError(_describe(exc, values)) from None
    if config.profile is not None:
        config = _with_profile(config, values, prefix)
    try:
        config.hourly_rates  # noqa: B018  # read the trace now, before any resource exists
    except (OSError, ValueError) as exc:
        raise StackConfigError(
            f"invalid stack configuration: {prefix}trafficTrace = {values.get('trafficTrace')!r}: {exc}"
        ) from None
    return config
