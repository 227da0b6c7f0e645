"""``llmfn plan`` and ``llmfn simulate`` end to end through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaling.plan import ReservedRule, hourly_schedule
from scaling.traces import poisson_trace


def llmfn(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("llmfn")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def small_trace(tmp_path: Path) -> Path:
    trace = poisson_trace(2.0, 900, seed=5)
    path = tmp_path / "small.csv"
    rows = [
        f"{t:.3f},{int(i)},{int(o)}"
        for t, i, o in zip(trace.arrival_s, trace.input_tokens, trace.output_tokens, strict=True)
    ]
    path.write_text("timestamp,input_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    return path


def test_plan_from_rate_profile_json_and_csv(tmp_path: Path) -> None:
    rates = [1.0] * 8 + [12.0] * 12 + [1.0] * 4
    profile = tmp_path / "profile.csv"
    profile.write_text("hour,rate_rps\n" + "\n".join(f"{h},{r}" for h, r in enumerate(rates)) + "\n")
    out = llmfn(
        "plan",
        "--rate-profile",
        str(profile),
        "--p95",
        "0.8",
        "--concurrency",
        "2",
        "--utc-offset",
        "8",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    expected = hourly_schedule(
        rates, ReservedRule(p95_latency_s=0.8, concurrency_per_instance=2, headroom=0.2)
    )
    assert plan["reserved_by_hour"] == expected
    assert plan["changes"] == [
        {"hour": 8, "instances": expected[8], "scf_cron": "0 0 0 * * * *", "aws_cron": "cron(0 0 * * ? *)"},
        {
            "hour": 20,
            "instances": expected[20],
            "scf_cron": "0 0 12 * * * *",
            "aws_cron": "cron(0 12 * * ? *)",
        },
    ]
    as_json = tmp_path / "profile.json"
    as_json.write_text(json.dumps({"rates_by_hour": rates}))
    text = llmfn(
        "plan", "--rate-profile", str(as_json), "--p95", "0.8", "--concurrency", "2", "--utc-offset", "8"
    )
    assert text.returncode == 0 and "0 0 12 * * * *" in text.stdout and "cron(0 12 * * ? *)" in text.stdout


def test_plan_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("hour,rate_rps\n0,1\n")
    out = llmfn("plan", "--rate-profile", str(bad))
    assert out.returncode == 2 and "need all 24 hours" in out.stderr and "Traceback" not in out.stderr
    out = llmfn("plan")
    assert out.returncode == 2 and "exactly one of --trace" in out.stderr
    out = llmfn("plan", "--rate-profile", str(bad), "--p95", "0")  # the rule is checked before the file
    assert out.returncode == 2 and "--p95 must be a positive number of seconds" in out.stderr


def test_plan_for_lambda_gpu_prints_the_floor_in_environments_and_its_daily_cost(tmp_path: Path) -> None:
    rates = [0.0] * 6 + [1.0, 2.0, 4.0, 8.0] + [10.0] * 4 + [8.0, 6.0, 4.0, 2.0, 1.0] + [0.0] * 5
    profile = tmp_path / "rates.json"
    profile.write_text(json.dumps(rates))
    common = [
        "plan",
        "--rate-profile",
        str(profile),
        "--p95",
        "0.76",
        "--min",
        "1",
        "--provider",
        "lambda-gpu",
    ]
    out = llmfn(*common, "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    # default --concurrency is the provider's 8 requests per environment: ceil(10 x 0.76 / 8 x 1.2) = 2
    assert plan["reserved_by_hour"] == [1] * 10 + [2] * 4 + [1] * 10
    assert plan["provider"] == "lambda-gpu"
    assert plan["reserved_environment_hours_per_day"] == 28.0
    # g6.xlarge on-demand 0.8048 USD/h + Lambda's 15 % management fee on it, per environment-hour
    assert plan["environment_price_per_hour"] == pytest.approx(0.8048 * 1.15)
    assert plan["estimated_reserved_cost_per_day"] == pytest.approx(28 * 0.8048 * 1.15, abs=1e-4)
    out = llmfn(*common, "--utc-offset", "8")
    assert out.returncode == 0, out.stderr
    table = out.stdout.splitlines()
    assert table[1].startswith("floor = max(Little's law, doubling)")
    assert table[2].split() == [
        "hour",
        "rate",
        "req/s",
        "5-min",
        "peak",
        "little",
        "doubling",
        "environments",
        "binds",
    ]
    # hour 10: Little ceil(10 x 0.76 / 8 x 1.2) = 2; doubling ceil(10 x 0.76 / (8 x 2)) = 1
    assert table[3 + 10].split() == ["10", "10.00", "10.00", "2", "1", "2", "little"]
    assert "28 environment-hours/day x 0.9255 USD/h = 25.9146 USD/day" in out.stdout
    assert "cron(" not in out.stdout  # the scaler moves MinExecutionEnvironments; no cron target exists
    assert [line.split() for line in table[-2:]] == [["10", "2", "2"], ["14", "1", "6"]]
    # a morning jump: hour 9 at 0.5 req/s faces 40 req/s in its last five minutes; Little gives 1
    # (ceil(0.5 x 0.76 / 8 x 1.2)), the doubling term ceil(40 x 0.76 / 16) = 2, which binds
    jump = tmp_path / "jump.json"
    jump.write_text(json.dumps([0.5] * 10 + [40.0] * 4 + [0.5] * 10))
    out = llmfn("plan", "--rate-profile", str(jump), "--p95", "0.76", "--provider", "lambda-gpu", "--json")
    hour9 = json.loads(out.stdout)["lmi_floor_by_hour"][9]
    assert (hour9["littles_law"], hour9["doubling"], hour9["floor"], hour9["binds"]) == (1, 2, 2, "doubling")
    assert json.loads(out.stdout)["reserved_by_hour"][9] == 2
    without = llmfn("plan", "--rate-profile", str(profile), "--p95", "0.76", "--min", "1", "--json")
    assert "estimated_reserved_cost_per_day" not in json.loads(without.stdout)  # no provider, no price


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--provider", "scf"], "--provider must be lambda-gpu"),
        (["--provider", "lambda-gpu", "--concurrency", "1601"], "--concurrency must be between 1 and 1600"),
    ],
)
def test_plan_provider_errors_name_the_flag(tmp_path: Path, flags: list[str], message: str) -> None:
    profile = tmp_path / "rates.json"
    profile.write_text(json.dumps([1.0] * 24))
    out = llmfn("plan", "--rate-profile", str(profile), *flags)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_simulate_json_and_plot(small_trace: Path, tmp_path: Path) -> None:
    png = tmp_path / "out.png"
    out = llmfn(
        "simulate",
        "--trace",
        str(small_trace),
        "--policy",
        "hybrid,on-demand,oracle",
        "--json",
        "--plot",
        str(png),
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [p["policy"] for p in report["policies"]] == ["hybrid", "on-demand", "oracle"]
    assert report["fidelity"] == "request" and report["requests"] > 1500
    hybrid = report["policies"][0]
    assert hybrid["cost_usd"] >= report["policies"][2]["cost_usd"] > 0
    assert set(hybrid["gap_usd"]) == {"packing", "idle_reserved", "cold_starts", "other"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = llmfn("simulate", "--trace", str(small_trace), "--policy", "fixed,hybrid", "--provider", "lambda")
    assert table.returncode == 0 and "provider lambda" in table.stdout and "fixed (" in table.stdout


def test_simulate_bad_input_names_the_problem(small_trace: Path, tmp_path: Path) -> None:
    out = llmfn("simulate", "--trace", str(small_trace), "--policy", "hybrid,magic")
    assert out.returncode == 2 and "magic" in out.stderr
    out = llmfn("simulate", "--trace", str(small_trace), "--provider", "gcp")
    assert out.returncode == 2 and "scf, lambda, fixed" in out.stderr
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp,input_tokens,output_tokens\n1.0,5,5\n2.0,five,5\n")
    out = llmfn("simulate", "--trace", str(broken))
    assert out.returncode == 2 and "broken.csv:3:" in out.stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-instances", "0"], "--max-instances must be >= 1"),
        (["--cold-start", "-1"], "--cold-start must be a number of seconds"),
        (["--keep-alive", "1e30"], "--keep-alive must be a number of seconds"),
    ],
)
def test_simulate_bad_flags_name_the_flag(small_trace: Path, flags: list[str], message: str) -> None:
    out = llmfn("simulate", "--trace", str(small_trace), *flags)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_simulate_refuses_a_directory_and_a_stray_timestamp(tmp_path: Path) -> None:
    out = llmfn("simulate", "--trace", str(tmp_path))
    assert out.returncode == 2 and "is a directory" in out.stderr
    stray = tmp_path / "stray.csv"
    stray.write_text("timestamp,input_tokens,output_tokens\n1,10,10\n2e9,10,10\n")
    for command in (["simulate"], ["plan"]):
        out = llmfn(*command, "--trace", str(stray))
        assert (
            out.returncode == 2
            and "stray.csv: timestamps span" in out.stderr
            and "Traceback" not in out.stderr
        )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lmi", "from_zero_s=420"], "--lmi is written to the profile: give --write-profile FILE"),
        (["--lmi", "warmup=3", "--write-profile", "p.json"], "unknown key(s) ['warmup']"),
        (["--lmi", "from_zero_s", "--write-profile", "p.json"], "--lmi takes KEY=VALUE"),
        (["--lmi", "target_utilisation=2", "--write-profile", "p.json"], "lmi.target_utilisation must be in"),
    ],
)
def test_load_lmi_figures_are_checked_before_any_request(flags: list[str], message: str) -> None:
    out = llmfn("load", "--url", "http://127.0.0.1:9", "--rps", "1", *flags)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
