"""Every benchmark in ``bench/`` runs: each script's smoke mode as a real subprocess, and every import it
makes (at the top or inside a function, which only a full run would reach) resolves.

A benchmark is a plain script that nothing else imports, so a module that moves breaks it silently; these
tests make that move fail the suite instead. Smoke modes use tiny sizes (the embedded tiny model the
suites build, reused through ``$LLMFN_CACHE``) and assert nothing about timings: their figures mean
nothing, only that every variant ran to its printed table.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
OURS = frozenset({"scaling", "preload", "functions", "layers", "infra", "llmfn", "tests"})


@dataclass(frozen=True)
class Smoke:
    """How one benchmark is smoke-run: its arguments and lines its output must hold."""

    args: tuple[str, ...]
    expect: tuple[str, ...]


# one of each kind (each branch of the child), not every worker count
PRELOAD_VARIANTS = (
    "llmfn:2",
    "llmfn-read:2",
    "load_file",
    "safe_open",
    "from_pretrained",
    "raw-preadv:2",
    "raw-mmap",
    "raw-mmap:1",
)
LIVE_SMOKE_STEPS = (
    "pulumi up (stand-in)",
    "GET /healthz through the gateway",
    "POST /v1/chat/completions",
    "tencent: URL on the alias, concurrency, key",
    "pulumi up (new model revision)",
    "llmfn promote",
    "tencent: canary URL gone, versions pruned",
    "pulumi up (rollback revision)",
    "tencent: promote that rolls back",
    "pulumi destroy (stand-in)",
    "tencent: nothing left",
)
"""bench/live_smoke.py --smoke: its Tencent steps against the SCF emulator (no scaler tick, no AWS)."""
SMOKES: dict[str, Smoke] = {
    "coldstart.py": Smoke(
        ("--smoke",),
        (
            "checkpoint: ",
            *(f"run 1/1 {v}" for v in ("floor: imports", "floor: raw read local", "floor: raw ranged s3")),
            *(f"run 1/1 {v}" for v in ("llmfn local", "naive local", "llmfn s3", "naive s3")),
            "cold start to first token",
            "goals",
        ),
    ),
    "preload.py": Smoke(
        ("--smoke",),
        ("cold: median of 1 runs", *(f"\n{v} " for v in PRELOAD_VARIANTS), "(cold table took"),
    ),
    "serve.py": Smoke(
        ("--smoke",),
        ("| bare |", "| app |", "added p50 latency", "| unloaded 0.5x |", "| overload 5x |", "RSS "),
    ),
    "simulate.py": Smoke(
        ("--smoke",),
        (
            "cells: cost / oracle, P99 TTFT",
            *(f"servegen_m-large_per_10min   {p:10s} " for p in ("scf", "lambda", "lambda-gpu")),
            "azure_llm_2023_code / lambda-gpu             hybrid ",
            *(f"packing on azure_llm_2023_{t} ({p})" for t in ("conv", "code") for p in ("scf", "lambda")),
            *(
                f"trace {t}: "
                for t in ("azure_llm_2023_conv", "azure_llm_2023_code", "servegen_m-large_per_10min")
            ),
            "goals: hybrid P99 TTFT",
            *(
                f"fidelity agreement on azure_llm_2023_{t} ({p})"
                for t in ("conv", "code")
                for p in ("scf", "lambda")
            ),
            "median of 1, min-max",
            "14-day time-step replay",
        ),
    ),
    "fuzz.py": Smoke(
        ("--smoke",),
        (
            "seeded: True",
            "| serve | schemathesis |",
            "| serve | hypothesis bodies |",
            "| gateway | schemathesis |",
            "| gateway | hypothesis bodies |",
            "serve: process alive: True; breaker: closed",
            "gateway: process alive: True; worker deaths: 0; slots still leased: 0",
            "| serve | field honesty |",
            "| gateway | hypothesis wire |",
            "| dev --api-key | 12 | 0 | - |",
            "failures: none",
        ),
    ),
    "live_smoke.py": Smoke(
        ("--smoke",),
        (
            "promoted: 1 -> 2",
            "rolled-back: gate at",
            *(f"-> {step} ...\n   ok in" for step in LIVE_SMOKE_STEPS),
        ),
    ),
}


def run_bench(script: str, args: tuple[str, ...], cache: Path, timeout_s: float) -> str:
    """Run ``bench/<script>`` in a fresh interpreter from the repository root; its stdout (rc 0 asserted)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "LLMFN_CACHE": str(cache),  # the tiny model the suites built: reused, not rebuilt
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, f"bench/{script} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_benchmark_has_a_smoke_run() -> None:
    """A new script in bench/ needs a row in SMOKES (and a --smoke flag), or this fails."""
    assert sorted(p.name for p in BENCH.glob("*.py")) == sorted(SMOKES)


def _check(script: str, out: str) -> None:
    missing = [line for line in SMOKES[script].expect if line not in out]
    assert missing == [], f"bench/{script}: missing {missing} in:\n{out}"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("script", ["coldstart.py", "preload.py"])
def test_model_benchmarks_smoke(script: str, tiny_model_dir: Path) -> None:
    """Every kind of variant, one run each, each in its own fresh process (torch imported per process)."""
    _check(script, run_bench(script, SMOKES[script].args, tiny_model_dir.parent, timeout_s=570))


def test_serve_benchmark_smoke(tiny_model_dir: Path) -> None:
    out = run_bench("serve.py", SMOKES["serve.py"].args, tiny_model_dir.parent, timeout_s=240)
    _check("serve.py", out)
    rows = re.findall(r"^\| (bare|app) \|.*\| (\d+) \|$", out, flags=re.MULTILINE)
    assert [name for name, _ in rows] == ["bare", "app"] and all(n == "0" for _, n in rows), out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_simulate_benchmark_smoke(traces_dir: Path, tmp_path: Path) -> None:
    """Every table (summary, packing, reports, goals, agreement, speed) on the shipped traces, cut short."""
    out = run_bench("simulate.py", SMOKES["simulate.py"].args, tmp_path, timeout_s=570)
    _check("simulate.py", out)
    assert out.count("goals: ") == 6, out  # 3 traces x 2 providers


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fuzz_benchmark_smoke(tiny_model_dir: Path) -> None:
    out = run_bench("fuzz.py", SMOKES["fuzz.py"].args, tiny_model_dir.parent, timeout_s=570)
    _check("fuzz.py", out)
    rows = re.findall(r"^\| (serve|gateway) \| [a-z ]+ \| (\d+) \| \d+ \| \d+ \| (\d+) \|", out, re.MULTILINE)
    assert len(rows) == 8 and all(fivexx == "0" for _, _, fivexx in rows), out


def _load_bench(script: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{script[:-3]}", BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_fuzz_benchmark_names_each_failure_column() -> None:
    """What makes ``bench/fuzz.py`` exit 1: each failure column above 0, by name; a clean row names none."""
    from collections import Counter

    from tests.fuzzing import Tally

    fuzz = _load_bench("fuzz.py")
    assert fuzz.tally_failures("serve", "schemathesis", Tally(cases=3)) == []
    bad = Tally(cases=3, statuses=Counter({"5xx": 2}), bad_errors=1, transport_errors=4)
    bad.findings["redirect"] += 1
    assert fuzz.tally_failures("gateway", "hypothesis wire", bad) == [
        "gateway/hypothesis wire: 5xx 2",
        "gateway/hypothesis wire: non-OpenAI errors 1",
        "gateway/hypothesis wire: findings 1",
        "gateway/hypothesis wire: transport errors 4",
    ]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_live_smoke_benchmark_smoke(tmp_path: Path) -> None:
    """Every step against the stand-ins, in order, each ok; the table ends without a failure."""
    out = run_bench("live_smoke.py", SMOKES["live_smoke.py"].args, tmp_path, timeout_s=240)
    _check("live_smoke.py", out)
    table = out[out.index("\nstep ") :]
    assert [line.rsplit(None, 2)[0] for line in table.strip().splitlines()[1:]] == list(LIVE_SMOKE_STEPS), out
    assert "FAILED" not in out, out


def test_live_smoke_parses_its_arguments(tmp_path: Path) -> None:
    """Its whole run needs an account; what runs here is its argument parsing and its first refusal."""
    help_text = run_bench("live_smoke.py", ("--help",), tmp_path, timeout_s=120)
    assert all(
        f in help_text for f in ("--cloud {aws,tencentcloud}", "--new-model-revision", "--keep", "--smoke")
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--cloud", "tencentcloud", "--region", "ap-guangzhou", "--image-uri", "i", "--model-repo", "m"]
    args += ["--model-revision", "a" * 40, "--new-model-revision", "b" * 40]
    done = subprocess.run(
        [sys.executable, str(BENCH / "live_smoke.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "--state-bucket and --scaler-role are required" in done.stderr


RUN_AS_MAIN = "-m"


def _our_imports(path: Path) -> list[tuple[str, str | None]]:
    """``(module, name)`` for every import of our packages in ``path``, wherever it stands, and
    ``(module, "-m")`` for every module it runs as ``python -m module`` (a ``"-m", "module"`` pair in a
    list of arguments)."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.List):
            words = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            found += [
                (module, RUN_AS_MAIN)
                for flag, module in itertools.pairwise(words)
                if flag == RUN_AS_MAIN and isinstance(module, str)
            ]
    return [(module, name) for module, name in found if module.split(".")[0] in OURS]


def _unresolved(imports: list[tuple[str, str | None]]) -> list[str]:
    missing = []
    for module_name, name in imports:
        if name == RUN_AS_MAIN:  # `python -m` runs a module, or a package's __main__
            spec = importlib.util.find_spec(module_name)
            if spec is None or (
                spec.submodule_search_locations is not None
                and importlib.util.find_spec(f"{module_name}.__main__") is None
            ):
                missing.append(f"python -m {module_name}")
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing.append(f"{module_name}: {exc}")
            continue
        if name is not None and not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ImportError:
                missing.append(f"{module_name}.{name}")
    return missing


@pytest.mark.parametrize("script", sorted(SMOKES))
def test_every_import_of_a_benchmark_resolves(script: str) -> None:
    """Also the imports inside functions (children, cloud steps) that the smoke run does not reach."""
    imports = _our_imports(BENCH / script)
    assert imports, f"bench/{script} imports nothing of ours? the scan is broken"
    assert _unresolved(imports) == []


def test_the_import_check_names_what_moved(tmp_path: Path) -> None:
    script = tmp_path / "b.py"
    script.write_text(
        "import os\nfrom functions.tiny_model import ensure_tiny_model\n"
        "def child():\n    from llmfn.local.tiny_model import ensure_tiny_model, gone_name\n"
        "    run([exe, '-m', 'functions.serve', '--port', '1'])\n    run([exe, '-m', 'functions.gone'])\n"
        "    run([exe, '-m', 'llmfn', 'dev'])\n    run([exe, '-m', 'scaling'])\n",
        encoding="utf-8",
    )
    imports = _our_imports(script)
    assert sorted(imports) == [
        ("functions.gone", "-m"),
        ("functions.serve", "-m"),
        ("functions.tiny_model", "ensure_tiny_model"),
        ("llmfn", "-m"),
        ("llmfn.local.tiny_model", "ensure_tiny_model"),
        ("llmfn.local.tiny_model", "gone_name"),
        ("scaling", "-m"),
    ]
    missing = sorted(_unresolved(imports))
    assert missing[0].startswith("functions.tiny_model: ")
    assert missing[1:] == [
        "llmfn.local.tiny_model.gone_name",
        "python -m functions.gone",
        "python -m scaling",
    ]
