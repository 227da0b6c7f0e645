"""A deployment profile: the service model, the instance, the platform, the prices and the cold start
of one model on one GPU, in one file (JSON or TOML) that ``llmfn simulate``, ``llmfn plan``, ``llmfn
dev --policy-config`` and the stack read, and that ``llmfn load --write-profile`` writes from a
measured run. Every section and key is optional; what is absent keeps the default of
:class:`~scaling.service.ServiceModel` / :class:`~scaling.providers.Provider`, whose sources
:func:`describe` prints (``llmfn simulate --show-profile``).

Shape (TOML; the JSON form has the same nesting)::

    [service]                  # ServiceModel: Hunyuan-13B on an L40S, say
    prefill_tokens_per_s = 5200
    decode_s_per_token = 0.021
    batch_slowdown = 0.3
    [instance]
    concurrency = 4            # concurrent requests one instance serves
    memory_gb = 24             # billed memory per instance
    [platform]
    keep_alive_s = 600
    max_instances = 200
    [prices]                   # any field of scaling.providers.Prices, USD
    active_per_gb_s = 0.00005
    [cold_start]               # a breakdown, seconds (or total_s, or from = "readyz.json")
    image_gb = 6.5             # image pull = image_gb / image_pull_gb_per_s
    image_pull_gb_per_s = 0.5
    weights_gb = 26            # weight fetch = weights_gb / storage_gb_per_s
    storage_gb_per_s = 1.5
    load_s = 1.8
    engine_start_s = 3.0       # CUDA context + KV-cache allocation + graph capture
    [lmi]                      # Lambda GPU (Managed Instances) only: the platform's own scaling
    target_utilisation = 0.6   # the capacity provider's GPU utilisation target
    from_zero_s = 420          # measured: traffic at zero environments -> first one serving

Pure apart from reading the file; imports nothing of llmfn outside ``scaling``.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.errors import ScalingError
from scaling.providers import Prices, Provider
from scaling.service import ServiceModel

MAX_PROFILE_BYTES = 1_000_000


class ProfileError(ScalingError):
    """A profile or cold-start file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ColdStartStage:
    """One step of a cold start: ``name``, ``seconds`` and where the figure comes from."""

    name: str
    seconds: float
    source: str


SEED_001_BREAKDOWN = (
    ColdStartStage("weights", 1.8, "seeds/001: ~3.2 GB from disk to GPU on an A10G"),
    ColdStartStage("cuda_context", 0.9, "seeds/001: streams, events, graphs"),
    ColdStartStage("kv_cache_allocation", 2.1, "seeds/001: paged KV-cache at max-model-len"),
)
"""Qwen3-4B on vLLM, no staged preload (docs/sources.md, seeds/001); its 0.6 s first token is the first
request's own prefill and decode, which the simulator adds per request, so it is left out."""
STAGED_PRELOAD = (
    ColdStartStage(
        "staged_preload",
        2.8,
        "seeds/000: Hunyuan-13B staged preload 18.7 -> 9.2 -> 5.1 -> 2.8 s (weights and engine overlapped)",
    ),
)
"""The default: the staged preload's measured total; the seed publishes no split of it."""


@dataclass(frozen=True)
class ColdStart:
    """A cold start as stages that run one after another; ``total_s`` is what the simulator waits."""

    stages: tuple[ColdStartStage, ...] = STAGED_PRELOAD

    @property
    def total_s(self) -> float:
        return float(sum(stage.seconds for stage in self.stages))


@dataclass(frozen=True)
class DeploymentProfile:
    """What a profile file sets; ``None`` / empty = keep the default. ``path`` names the file."""

    path: str = ""
    service: dict[str, float] = field(default_factory=dict)
    concurrency: int | None = None
    memory_gb: float | None = None
    keep_alive_s: float | None = None
    max_instances: int | None = None
    prices: dict[str, float] = field(default_factory=dict)
    cold_start: ColdStart | None = None
    lmi: dict[str, float] = field(default_factory=dict)

    def service_model(self, base: ServiceModel | None = None) -> ServiceModel:
        """The profile's service model over ``base`` (default: Qwen3-4B on an A10G)."""
        return replace(base or ServiceModel(), **self.service)

    def apply(self, provider: Provider) -> Provider:
        """``provider`` with the profile's instance, platform, prices and cold start."""
        changes: dict[str, Any] = {}
        if self.concurrency is not None:
            changes["concurrency_per_instance"] = self.concurrency
        for key in ("memory_gb", "keep_alive_s", "max_instances"):
            if getattr(self, key) is not None:
                changes[key] = getattr(self, key)
        if self.prices:
            changes["prices"] = replace(provider.prices, **self.prices)
        if self.cold_start is not None:
            changes["cold_start_s"] = self.cold_start.total_s
        if self.lmi and provider.lmi is not None:  # [lmi] applies to Lambda GPU only
            changes["lmi"] = replace(provider.lmi, **self.lmi)
        return provider.with_overrides(**changes) if changes else provider


# --------------------------------------------------------------------------- reading

_SECTIONS = {"service", "instance", "platform", "prices", "cold_start", "lmi"}
_LMI_RANGES = {
    "target_utilisation": (0.01, 1.0, False),
    "doubling_s": (1.0, 86_400.0, False),
    "scale_in_per_min": (0.001, 1.0, False),
    "from_zero_s": (0.0, 86_400.0, False),
    "idle_to_zero_s": (0.0, 86_400.0, False),
    "publish_environments": (0, 1000, True),
}
"""Keys of ``[lmi]`` (:class:`scaling.providers.LmiScaling`) and their ranges: low, high, whole."""


def lmi_values(values: dict[str, Any], where: str) -> dict[str, float]:
    """Validated ``[lmi]`` keys (a profile's section, or ``llmfn load --lmi KEY=VALUE``)."""
    unknown = sorted(set(values) - set(_LMI_RANGES))
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {unknown} in section 'lmi'; allowed: {sorted(_LMI_RANGES)}"
        )
    return {
        key: _number(f"{where}: lmi.{key}", value, low, high, integer)
        for key, value in values.items()
        for low, high, integer in (_LMI_RANGES[key],)
    }


_SERVICE_KEYS = {f.name for f in fields(ServiceModel)}
_PRICE_KEYS = {f.name for f in fields(Prices)}
_COLD_KEYS = {
    "total_s",
    "from",
    "stages",
    "image_gb",
    "image_pull_gb_per_s",
    "weights_gb",
    "storage_gb_per_s",
    "load_s",
    "engine_start_s",
}


def _load_mapping(path: Path, what: str) -> Any:
    """JSON (``.json``) or TOML (anything else) from ``path``; one clear error otherwise."""
    if path.is_dir():
        raise ProfileError(f"{what} {str(path)!r} is a directory; give a JSON or TOML file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r}: no such file")
    data = path.read_bytes()
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(
            f"{what} {str(path)!r}: {len(data):,} bytes; a profile is at most {MAX_PROFILE_BYTES:,}"
        )
    try:
        text = data.decode("utf-8")
        if path.suffix == ".json":
            return json.loads(text)
        return tomllib.loads(text)
    except UnicodeDecodeError:
        raise ProfileError(f"{what} {str(path)!r}: not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProfileError(f"{what} {str(path)!r}: not valid JSON ({exc!s:.100})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(
            f"{what} {str(path)!r}: not valid TOML ({exc}); name the file .json for JSON"
        ) from None


def _number(where: str, value: Any, low: float, high: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where} must be a number, got {value!r}")
    if not (low <= value <= high) or not math.isfinite(value):
        raise ProfileError(f"{where} must be in [{low:g}, {high:g}], got {value!r}")
    if integer and value != int(value):
        raise ProfileError(f"{where} must be a whole number, got {value!r}")
    return int(value) if integer else float(value)


def _section(name: str, data: dict[str, Any], allowed: set[str], where: str) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ProfileError(
            f"{where}: section {name!r} must be a table / object, got {type(section).__name__}"
        )
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {unknown} in section {name!r}; allowed: {sorted(allowed)}"
        )
    return section


def read_profile(path: str | Path) -> DeploymentProfile:
    """Read and validate a profile file (see the module docstring); errors name the file and key."""
    path = Path(path)
    data = _load_mapping(path, "profile")
    where = str(path)
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile is a table / object of sections {sorted(_SECTIONS)}")
    unknown = sorted(k for k in set(data) - _SECTIONS if not str(k).startswith("_"))  # "_note": a comment
    if unknown:
        raise ProfileError(f"{where}: unknown section(s) {unknown}; allowed: {sorted(_SECTIONS)}")
    service_raw = _section("service", data, _SERVICE_KEYS, where)
    service = {
        key: _number(f"{where}: service.{key}", value, 0.0 if key == "batch_slowdown" else 1e-9, 1e9)
        for key, value in service_raw.items()
    }
    instance = _section("instance", data, {"concurrency", "memory_gb"}, where)
    platform = _section("platform", data, {"keep_alive_s", "max_instances"}, where)
    prices = {
        key: _number(f"{where}: prices.{key}", value, 0.0, 1e3)
        for key, value in _section("prices", data, _PRICE_KEYS, where).items()
    }
    cold = _section("cold_start", data, _COLD_KEYS, where)
    lmi = lmi_values(_section("lmi", data, set(_LMI_RANGES), where), where)

    def opt(
        section: dict[str, Any], key: str, name: str, low: float, high: float, integer: bool = False
    ) -> Any:
        return (
            None
            if key not in section
            else _number(f"{where}: {name}.{key}", section[key], low, high, integer)
        )

    return DeploymentProfile(
        path=where,
        service=service,
        concurrency=opt(instance, "concurrency", "instance", 1, 10_000, integer=True),
        memory_gb=opt(instance, "memory_gb", "instance", 0.125, 10_000),
        keep_alive_s=opt(platform, "keep_alive_s", "platform", 0, 86_400),
        max_instances=opt(platform, "max_instances", "platform", 1, 1_000_000, integer=True),
        prices=prices,
        cold_start=_cold_start(cold, path) if cold else None,
        lmi=lmi,
    )


def _cold_start(section: dict[str, Any], path: Path) -> ColdStart:
    """The ``[cold_start]`` table: ``total_s``, ``stages``, ``from`` a measurement, or a breakdown."""
    where = f"{path}: cold_start"
    kinds = [k for k in ("total_s", "stages", "from") if k in section]
    breakdown = sorted(set(section) - {"total_s", "stages", "from"})
    if len(kinds) > 1 or (kinds and breakdown):
        raise ProfileError(
            f"{where}: give one of total_s, stages, from or the breakdown keys, got {sorted(section)}"
        )
    if "total_s" in section:
        seconds = _number(f"{where}.total_s", section["total_s"], 0, 3600)
        return ColdStart((ColdStartStage("total", seconds, f"profile {path}"),))
    if "stages" in section:
        return ColdStart(_stage_list(section["stages"], f"{where}.stages", f"profile {path}"))
    if "from" in section:
        source = section["from"]
        if not isinstance(source, str) or not source:
            raise ProfileError(f"{where}.from must be a file name, got {source!r}")
        target = Path(source) if Path(source).is_absolute() else path.parent / source
        return read_cold_start(target)
    stages: list[ColdStartStage] = []
    for size, rate, name in (
        ("image_gb", "image_pull_gb_per_s", "image_pull"),
        ("weights_gb", "storage_gb_per_s", "weight_fetch"),
    ):
        if (size in section) != (rate in section):
            raise ProfileError(f"{where}: {size} and {rate} go together ({name} = {size} / {rate})")
        if size in section:
            gb = _number(f"{where}.{size}", section[size], 0, 10_000)
            gb_per_s = _number(f"{where}.{rate}", section[rate], 1e-6, 10_000)
            stages.append(
                ColdStartStage(name, gb / gb_per_s, f"profile {path}: {gb:g} GB / {gb_per_s:g} GB/s")
            )
    for key, name in (("load_s", "load"), ("engine_start_s", "engine_start")):
        if key in section:
            stages.append(
                ColdStartStage(name, _number(f"{where}.{key}", section[key], 0, 3600), f"profile {path}")
            )
    return ColdStart(tuple(stages))


def _stage_list(rows: Any, where: str, source: str) -> tuple[ColdStartStage, ...]:
    """``[{name, seconds}, ...]`` (``stage`` may stand for ``name``: ``llmfn preload``'s rows)."""
    if not isinstance(rows, list) or not rows:
        raise ProfileError(f"{where} must be a non-empty list of {{name, seconds}}")
    stages = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ProfileError(f"{where}[{i}] must be an object {{name, seconds}}, got {row!r:.60}")
        name = row.get("name", row.get("stage"))
        if not isinstance(name, str):
            raise ProfileError(f"{where}[{i}].name must be a string, got {name!r:.60}")
        stages.append(
            ColdStartStage(name, _number(f"{where}[{i}].seconds", row.get("seconds"), 0, 3600), source)
        )
    return tuple(stages)


def read_cold_start(path: str | Path) -> ColdStart:
    """A measured cold start (``--cold-start-from FILE``), from any of:

    - the cold-start timeline (``/readyz``'s ``timeline``, or the whole ``/readyz`` body holding
      it): ``{"stages": [{"name", "start_s", "end_s", "seconds"}], "ready_s", ...}``. Its stages
      overlap, so the cold start is ``ready_s`` (process start to ready), split by stage;
    - ``/readyz``'s ``stages_done_s`` (``{stage: seconds}``, stages one after another);
    - a ``stages`` list of ``{name, seconds}`` (``llmfn preload``'s table rows, ``stage`` may stand
      for ``name``), or that list alone: stages one after another.
    """
    path = Path(path)
    data = _load_mapping(path, "cold-start file")
    where = str(path)
    source = f"measured: {path.name}"
    if isinstance(data, dict) and isinstance(data.get("timeline"), dict):
        data = data["timeline"]
    if isinstance(data, list):
        return ColdStart(_stage_list(data, where, source))
    if not isinstance(data, dict):
        raise ProfileError(
            f"{where}: want a JSON object with 'stages' or 'stages_done_s', or a list of stages"
        )
    if "stages" in data:
        stages = _stage_list(data["stages"], f"{where}: stages", source)
        ready = data.get("ready_s")
        if ready is None:
            return ColdStart(stages)
        ready_s = _number(f"{where}: ready_s", ready, 0, 3600)
        # overlapping steps: keep each step's share of the wall time to ready, in its own order
        timed = [s for s in stages if s.name != "first_token"]
        busy = sum(s.seconds for s in timed)
        scale = ready_s / busy if busy > 0 else 0.0
        if not timed or busy <= 0:
            return ColdStart((ColdStartStage("ready", ready_s, source),))
        return ColdStart(
            tuple(
                ColdStartStage(s.name, s.seconds * scale, f"{source} ({s.seconds:.3f} s, overlapped)")
                for s in timed
            )
        )
    if "stages_done_s" in data:
        done = data["stages_done_s"]
        if not isinstance(done, dict) or not done:
            raise ProfileError(f"{where}: stages_done_s must be a non-empty object {{stage: seconds}}")
        return ColdStart(
            tuple(
                ColdStartStage(str(name), _number(f"{where}: stages_done_s.{name}", value, 0, 3600), source)
                for name, value in done.items()
            )
        )
    raise ProfileError(f"{where}: no 'stages', 'stages_done_s' or 'timeline' in the file")


# --------------------------------------------------------------------------- describing

_SERVICE_SOURCES = {
    "prefill_tokens_per_s": "~8 GFLOP/token for 4B params at ~64 TFLOPS effective bf16 (A10G)",
    "decode_s_per_token": "8.04 GB of weights per token at 600 GB/s (A10G); seeds/002",
    "batch_slowdown": "batch 8 = 2.3x throughput (seeds/002, docs/sources.md)",
}
_PROVIDER_SOURCES = {
    "concurrency_per_instance": "SCF 8 = batch 8 (docs/sources.md); a Lambda environment serves 1",
    "memory_gb": "SCF 16 GB (7.8 GB at batch 8 + KV room), Lambda 10 GB (its maximum), server 24 GB",
    "keep_alive_s": "not published; seeds/002's 'idle 10 min -> zero'",
    "max_instances": "a quota; 1000 by default",
}
_PRICE_SOURCES = {
    "active_per_gb_s": "Alibaba FC Tesla 2.1 CU x 0.000020 USD (no public Tencent GPU price)",
    "idle_per_gb_s": "Alibaba FC Tesla idle 0.5 CU x 0.000020 USD",
    "provisioned_per_gb_s": "AWS Lambda us-east-1 x86",
    "provisioned_duration_per_gb_s": "AWS Lambda us-east-1 x86",
    "on_demand_per_gb_s": "AWS Lambda us-east-1 x86",
    "per_million_requests": "AWS Lambda",
    "server_per_hour": "AWS g5.xlarge (1x A10G) on-demand, us-east-1",
    "on_demand_idle_per_gb_s": "0: idle-warm on-demand time is free on SCF and Lambda",
    "instance_per_hour": "g6.xlarge (1x NVIDIA L4 24 GB) EC2 on-demand, us-east-1: what LMI bills per instance",
    "management_fee": "'Compute management fee: 15% premium on the EC2 on-demand instance price' "
    "(aws.amazon.com/lambda/pricing, Lambda Managed Instances)",
    "environments_per_instance": "min(instance GPU memory / AcceleratorMemorySize, instance vCPUs / "
    "environment vCPUs, instance memory / (vCPUs x ExecutionEnvironmentMemoryGiBPerVCpu)); g6.xlarge "
    "with 24 GiB: min(1, 4, 8) = 1 (API AcceleratorConfig: 'The minimum amount of memory (in GB) of "
    "each accelerator device exposed to the execution environment')",
    "instance_discount": "0: no Savings Plan; 'Savings Plans apply' to the instance part, not the fee",
}
_LMI_SOURCES = {
    "target_utilisation": "'The default GPU utilization target is 40%, which is designed to leave "
    "headroom for traffic to double' (Lambda docs, lambda-managed-instances-gpu-scaling)",
    "doubling_s": "'If your traffic more than doubles within 5 minutes, you may see throttles' "
    "(Lambda docs, lambda-managed-instances-scaling)",
    "scale_in_per_min": "assumed 10 %/min of the excess: 'Lambda Managed Instances scale down gradually' "
    "(troubleshooting page); no rate is published",
    "from_zero_s": "assumed 300 s: 'scaling from zero can take several minutes while Lambda provisions new "
    "GPU instances, and requests might fail if GPU capacity isn't available' (GPU scaling page)",
    "idle_to_zero_s": "assumed 900 s without traffic before the last environment goes (floor 0); not published",
    "publish_environments": "'starts three execution environments before marking your function version "
    "ACTIVE' (Lambda docs, lambda-managed-instances-scaling)",
}


def describe(
    provider: Provider,
    service: ServiceModel,
    profile: DeploymentProfile | None,
    flags: set[str] | frozenset[str] = frozenset(),
) -> list[tuple[str, str, str]]:
    """(key, value, source) of every figure a simulation uses: a command-line flag's (``flags``:
    the Provider fields set by one), the profile's where it sets one, else the default's citation."""
    mine = profile or DeploymentProfile()
    from_file = f"profile {mine.path}"
    rows: list[tuple[str, str, str]] = []
    for key, source in _SERVICE_SOURCES.items():
        rows.append(
            (f"service.{key}", f"{getattr(service, key):g}", from_file if key in mine.service else source)
        )
    instance_set = {
        "concurrency_per_instance": mine.concurrency is not None,
        "memory_gb": mine.memory_gb is not None,
        "keep_alive_s": mine.keep_alive_s is not None,
        "max_instances": mine.max_instances is not None,
    }
    for key, source in _PROVIDER_SOURCES.items():
        origin = "command-line flag" if key in flags else from_file if instance_set[key] else source
        rows.append((f"{provider.name}.{key}", f"{getattr(provider, key):g}", origin))
    for key in provider_price_keys(provider):
        source = from_file if key in mine.prices else _PRICE_SOURCES[key]
        rows.append((f"prices.{key}", f"{getattr(provider.prices, key):g}", source))
    if provider.lmi is not None:
        for key, source in _LMI_SOURCES.items():
            origin = from_file if key in mine.lmi else source
            rows.append((f"lmi.{key}", f"{getattr(provider.lmi, key):g}", origin))
    cold = mine.cold_start if mine.cold_start is not None else ColdStart()
    if "cold_start_s" in flags or cold.total_s != provider.cold_start_s:
        rows.append(("cold_start.total_s", f"{provider.cold_start_s:g}", "command-line flag"))
    else:
        for stage in cold.stages:
            rows.append((f"cold_start.{stage.name}", f"{stage.seconds:.3f}", stage.source))
        rows.append(("cold_start.total_s", f"{cold.total_s:.3f}", "sum of the stages above"))
    for stage in SEED_001_BREAKDOWN:
        rows.append((f"(reference) no staged preload: {stage.name}", f"{stage.seconds:g}", stage.source))
    return rows


def provider_price_keys(provider: Provider) -> list[str]:
    """The price fields ``provider``'s billing model uses."""
    if provider.billing == "scf":
        return ["active_per_gb_s", "idle_per_gb_s", "on_demand_idle_per_gb_s"]
    if provider.billing == "lambda":
        return [
            "provisioned_per_gb_s",
            "provisioned_duration_per_gb_s",
            "on_demand_per_gb_s",
            "per_million_requests",
        ]
    if provider.billing == "lambda-gpu":
        return [
            "instance_per_hour",
            "management_fee",
            "environments_per_instance",
            "instance_discount",
            "per_million_requests",
        ]
    return ["server_per_hour"]


def write_profile(
    path: str | Path,
    service: ServiceModel,
    concurrency: int | None,
    cold_start_s: float | None,
    note: str,
    lmi: dict[str, float] | None = None,
) -> Path:
    """Write a JSON profile (``llmfn load --write-profile``): the measured service model, and the
    concurrency and cold start where measured; ``lmi``: Managed Instances figures measured on an
    account (validated ``[lmi]`` keys). ``note`` says where the figures come from."""
    data: dict[str, Any] = {
        "service": {
            "prefill_tokens_per_s": service.prefill_tokens_per_s,
            "decode_s_per_token": service.decode_s_per_token,
            "batch_slowdown": service.batch_slowdown,
        }
    }
    if concurrency is not None:
        data["instance"] = {"concurrency": concurrency}
    if cold_start_s is not None:
        data["cold_start"] = {"total_s": round(cold_start_s, 4)}
    if lmi:
        data["lmi"] = lmi_values(lmi, str(path))
    path = Path(path)
    path.write_text(json.dumps({"_note": note, **data}, indent=2) + "\n", encoding="utf-8")
    return path
