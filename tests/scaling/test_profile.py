"""Deployment profiles (issue 15.6) and cold starts as a breakdown or a measurement (15.4): read by
``llmfn simulate`` / ``llmfn plan`` from JSON or TOML, with every figure's source printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaling.profile import ProfileError, read_cold_start, read_profile
from scaling.providers import get_provider
from scaling.service import ServiceModel
from scaling.simulate import Settings, simulate
from scaling.traces import poisson_trace

HUNYUAN_TOML = """
[service]
prefill_tokens_per_s = 5200
decode_s_per_token = 0.021
batch_slowdown = 0.3
[instance]
concurrency = 4
memory_gb = 24
[platform]
keep_alive_s = 300
max_instances = 40
[prices]
active_per_gb_s = 0.00005
[cold_start]
image_gb = 6.5
image_pull_gb_per_s = 0.5
weights_gb = 26
storage_gb_per_s = 1.3
load_s = 1.8
engine_start_s = 3.0
"""

# the cold-start timeline issue 16 puts in /readyz (overlapping steps), the current /readyz
# stages_done_s, and llmfn preload's table rows
TIMELINE = {
    "ready": True,
    "timeline": {
        "origin": "process_start",
        "stages": [
            {"name": "interpreter", "start_s": 0.0, "end_s": 0.05, "seconds": 0.05},
            {"name": "imports", "start_s": 0.05, "end_s": 1.25, "seconds": 1.2},
            {"name": "weights", "start_s": 0.1, "end_s": 2.1, "seconds": 2.0, "bytes": 8_044_936_192},
            {"name": "engine", "start_s": 1.25, "end_s": 2.6, "seconds": 1.35},
            {"name": "first_token", "start_s": 2.7, "end_s": 3.0, "seconds": 0.3},
        ],
        "ready_s": 2.6,
        "first_token_s": 3.0,
        "total_s": 3.0,
    },
}


def llmfn(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("llmfn")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_a_toml_profile_sets_service_instance_platform_prices_and_a_cold_start_breakdown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hunyuan-13b-l40s.toml"
    path.write_text(HUNYUAN_TOML)
    profile = read_profile(path)
    cold = profile.cold_start
    assert cold is not None
    assert [s.name for s in cold.stages] == ["image_pull", "weight_fetch", "load", "engine_start"]
    assert cold.total_s == pytest.approx(6.5 / 0.5 + 26 / 1.3 + 1.8 + 3.0)
    scf = profile.apply(get_provider("scf"))
    assert (scf.concurrency_per_instance, scf.memory_gb, scf.keep_alive_s, scf.max_instances) == (
        4,
        24,
        300,
        40,
    )
    assert (
        scf.prices.active_per_gb_s == 0.00005
        and scf.prices.idle_per_gb_s == get_provider("scf").prices.idle_per_gb_s
    )
    assert scf.cold_start_s == pytest.approx(cold.total_s)
    service = profile.service_model()
    assert service == ServiceModel(prefill_tokens_per_s=5200, decode_s_per_token=0.021, batch_slowdown=0.3)
    # the same profile as JSON gives the same thing, and the simulation uses it
    as_json = tmp_path / "p.json"
    import tomllib

    as_json.write_text(json.dumps(tomllib.loads(HUNYUAN_TOML)))
    assert read_profile(as_json).apply(get_provider("scf")) == scf
    trace = poisson_trace(1.0, 600, seed=2, tokens_in=800, tokens_out=120)
    report = simulate(trace, ["oracle"], Settings(provider=scf, service=service))
    assert report.policies[0].ttft_s[2] == pytest.approx(
        float(sorted(trace.input_tokens)[int(0.99 * trace.requests + 0.999) - 1]) / 5200
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("[instance]\nconcurency = 3\n", "unknown key(s) ['concurency'] in section 'instance'"),
        ("[instance]\nconcurrency = 0\n", "instance.concurrency must be in [1, 10000]"),
        ("[instance]\nconcurrency = 2.5\n", "instance.concurrency must be a whole number"),
        ("[service]\nprefill_tokens_per_s = -5\n", "service.prefill_tokens_per_s must be in"),
        ("[service]\ndecode_s_per_token = 'fast'\n", "service.decode_s_per_token must be a number"),
        ("[gpu]\nkind = 'L40S'\n", "unknown section(s) ['gpu']"),
        ("[cold_start]\nimage_gb = 4\n", "image_gb and image_pull_gb_per_s go together"),
        (
            "[cold_start]\ntotal_s = 3\nload_s = 1\n",
            "give one of total_s, stages, from or the breakdown keys",
        ),
        ("[cold_start]\nfrom = 'missing.json'\n", "no such file"),
        ("[prices]\nactive_per_gb_s = 1e9\n", "prices.active_per_gb_s must be in"),
        ("x = [", "not valid TOML"),
    ],
)
def test_bad_profiles_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises((ProfileError, FileNotFoundError)) as err:
        read_profile(path)
    assert message in str(err.value)


def test_cold_start_from_the_timeline_readyz_and_preload_rows(tmp_path: Path) -> None:
    timeline = tmp_path / "readyz.json"
    timeline.write_text(json.dumps(TIMELINE))
    cold = read_cold_start(timeline)
    assert cold.total_s == pytest.approx(2.6)  # overlapping steps: the wall time to ready
    assert [s.name for s in cold.stages] == ["interpreter", "imports", "weights", "engine"]
    old = tmp_path / "readyz-old.json"
    old.write_text(
        json.dumps({"ready": True, "stages_done_s": {"runtime": 0.3, "embedding": 0.4, "blocks": 1.6}})
    )
    assert read_cold_start(old).total_s == pytest.approx(2.3)
    rows = tmp_path / "preload.json"
    rows.write_text(
        json.dumps({"stages": [{"stage": "runtime", "seconds": 0.2}, {"name": "blocks", "seconds": 1.0}]})
    )
    assert read_cold_start(rows).total_s == pytest.approx(1.2)
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{"name": "weights", "seconds": 1.8}, {"name": "engine", "seconds": 3.0}]))
    assert read_cold_start(bare).total_s == pytest.approx(4.8)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stages": [{"name": "weights", "seconds": -1}]}))
    with pytest.raises(ProfileError, match=r"bad\.json: stages\[0\]\.seconds must be in"):
        read_cold_start(bad)


def test_cli_profile_cold_start_from_and_show_profile(tmp_path: Path) -> None:
    profile = tmp_path / "hunyuan.toml"
    profile.write_text(HUNYUAN_TOML)
    shown = llmfn("simulate", "--show-profile", "--profile", str(profile))
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
    assert (
        "5200" in lines["service.prefill_tokens_per_s"]
        and f"profile {profile}" in lines["service.prefill_tokens_per_s"]
    )
    assert "seeds/002" in lines["service.batch_slowdown"] or "0.3" in lines["service.batch_slowdown"]
    assert (
        "13.000" in lines["cold_start.image_pull"] and "6.5 GB / 0.5 GB/s" in lines["cold_start.image_pull"]
    )
    defaults = llmfn("simulate", "--show-profile")
    assert "cold_start.staged_preload" in defaults.stdout and "seeds/000" in defaults.stdout
    assert "Alibaba FC Tesla" in defaults.stdout and "8000" in defaults.stdout
    readyz = tmp_path / "readyz.json"
    readyz.write_text(json.dumps(TIMELINE))
    trace = poisson_trace(1.0, 300, seed=4)
    csv = tmp_path / "t.csv"
    csv.write_text(
        "timestamp,input_tokens,output_tokens\n"
        + "".join(
            f"{t:.3f},{int(i)},{int(o)}\n"
            for t, i, o in zip(trace.arrival_s, trace.input_tokens, trace.output_tokens, strict=True)
        )
    )
    out = llmfn(
        "simulate", "--trace", str(csv), "--policy", "on-demand", "--json", "--cold-start-from", str(readyz)
    )
    assert out.returncode == 0, out.stderr
    both = llmfn("simulate", "--trace", str(csv), "--cold-start", "3", "--cold-start-from", str(readyz))
    assert (
        both.returncode == 2 and "give one of --cold-start SECONDS or --cold-start-from FILE" in both.stderr
    )
    plan = llmfn("plan", "--trace", str(csv), "--profile", str(profile), "--json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["rule"]["concurrency_per_instance"] == 4


def test_lmi_section_sets_the_platform_scaling_and_show_profile_cites_each(tmp_path: Path) -> None:
    """``[lmi]`` applies to Lambda GPU only; every LMI figure and price is listed with its source."""
    from scaling.profile import read_profile, write_profile
    from scaling.providers import get_provider
    from scaling.service import ServiceModel

    profile = tmp_path / "lmi.toml"
    profile.write_text("[lmi]\ntarget_utilisation = 0.6\nfrom_zero_s = 420\n")
    read = read_profile(profile)
    gpu = read.apply(get_provider("lambda-gpu"))
    assert gpu.lmi is not None and (gpu.lmi.target_utilisation, gpu.lmi.from_zero_s) == (0.6, 420.0)
    assert gpu.lmi.doubling_s == 300.0  # the rest keep their documented defaults
    assert read.apply(get_provider("scf")).lmi is None
    bad = tmp_path / "bad.toml"
    bad.write_text("[lmi]\ntarget_utilisation = 1.5\n")
    with pytest.raises(ProfileError, match=r"lmi\.target_utilisation must be in \[0\.01, 1\]"):
        read_profile(bad)
    bad.write_text("[lmi]\nwarmup = 3\n")
    with pytest.raises(ProfileError, match=r"unknown key.*'warmup'.*allowed"):
        read_profile(bad)
    written = write_profile(tmp_path / "m.json", ServiceModel(), None, None, "test", lmi={"from_zero_s": 410})
    assert read_profile(written).lmi == {"from_zero_s": 410.0}
    shown = llmfn("simulate", "--show-profile", "--provider", "lambda-gpu", "--profile", str(profile))
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip()}
    assert "40%" in llmfn("simulate", "--show-profile", "--provider", "lambda-gpu").stdout
    assert (
        "0.6" in lines["lmi.target_utilisation"] and f"profile {profile}" in lines["lmi.target_utilisation"]
    )
    assert "doubles within 5 minutes" in lines["lmi.doubling_s"]
    assert "three execution environments" in lines["lmi.publish_environments"]
    assert "15% premium" in lines["prices.management_fee"]
    assert "AcceleratorMemorySize" in lines["prices.environments_per_instance"]
