"""The function package holds the import closure of its handlers, and that closure alone runs them.

Each check runs in a fresh Python that sees only the unpacked zip's files of ours (tests/layers/packed.py).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.contract import IMAGE_ENTRY_MODULES, LAMBDA_HANDLERS, handler_module
from layers import BuildRequest, LayerBuildError, build_packages
from layers.closure import OUR_PACKAGES, ClosureError, import_closure
from tests.functions.test_entry_points import CHAT, KEY, http_api_v2_event
from tests.layers.packed import REPO_ROOT, build_and_unpack, run_packed

DOCKERIGNORE = REPO_ROOT / "functions" / "image" / "Dockerfile.dockerignore"
# What only the simulator, the planner's tables, the local runtime, the load generator and CI promotion use.
NEVER_IN_A_FUNCTION = (
    "scaling/simulate.py",
    "scaling/sim_timestep.py",
    "scaling/sim_requests.py",
    "scaling/sim_result.py",
    "scaling/plot.py",
    "scaling/traces.py",
    "scaling/tables.py",
    "functions/image/entry.py",
)


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_and_unpack(tmp_path_factory.mktemp("function-package"))


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_the_package_is_the_handlers_import_closure(unpacked: Path) -> None:
    files = _files(unpacked)
    modules = [handler_module(handler) for handler in LAMBDA_HANDLERS.values()]
    assert files == set(import_closure(REPO_ROOT, modules))
    for module in modules:
        assert module.replace(".", "/") + ".py" in files
    assert "core/contract.py" in files and "scaling/policies/hybrid.py" in files
    assert not files & set(NEVER_IN_A_FUNCTION)
    assert all(name.endswith(".py") for name in files)


def test_modules_left_out_are_not_importable_there(unpacked: Path) -> None:
    """The check's own guard: a module the zip lacks does not come from the checkout instead."""
    for module in ("scaling.simulate", "llmfn.local.loadgen", "llmfn.cli", "layers.build"):
        done = run_packed(unpacked, f"import {module}")
        assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, (module, done.stderr)


@pytest.mark.slow
def test_the_packed_inference_handler_answers_a_chat_event(unpacked: Path, tiny_model_dir: Path) -> None:
    """The Lambda handler, with only the zip's modules, preloads the tiny model and answers."""
    event = http_api_v2_event("POST", "/v1/chat/completions", json.dumps(CHAT))
    code = (
        "import json, sys\n"
        "from functions.cloud.aws.entry import handler\n"
        f"response = handler(json.loads({json.dumps(event)!r}), None)\n"
        "print(json.dumps(response))\n"
    )
    env = {
        "LLMFN_MODEL": str(tiny_model_dir),
        "LLMFN_MODEL_NAME": "tiny",
        "LLMFN_API_KEY": KEY,
        "LLMFN_PRELOAD_WORKERS": "2",
        "LLMFN_ACCESS_LOG": "false",
        # the event default (25 s, under SCF's 30 s start-up limit) is for a function; a loaded CI machine
        # can take longer to import torch, and this test is about the zip's contents, not that bound
        "LLMFN_READY_WAIT_S": "300",
    }
    done = run_packed(unpacked, code, env)
    assert done.returncode == 0, done.stderr[-3000:]
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["choices"][0]["message"]["role"] == "assistant"


def test_a_missing_entry_point_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClosureError, match=r"entry point module 'functions\.entry\.nope' not found"):
        import_closure(REPO_ROOT, ["functions.entry.nope"])


def _dockerignore_excluded() -> set[str]:
    """The files of ours the image's build context leaves out: the patterns after the allow-list."""
    lines = [line for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")]
    patterns = [line for line in lines[lines.index("*") + 1 :] if not line.startswith(("!", "**/"))]
    tracked = {
        p.relative_to(REPO_ROOT).as_posix()
        for package in OUR_PACKAGES
        for p in (REPO_ROOT / package).rglob("*")
    }
    return {
        name
        for name in tracked
        for pattern in patterns
        if (name.startswith(pattern) if pattern.endswith("/") else fnmatch.fnmatchcase(name, pattern))
    }


def test_the_image_leaves_out_exactly_what_its_entry_points_do_not_import() -> None:
    closure = set(import_closure(REPO_ROOT, IMAGE_ENTRY_MODULES))
    excluded = _dockerignore_excluded()
    assert not closure & excluded, "the image needs these: remove them from Dockerfile.dockerignore"
    ours = {
        p.relative_to(REPO_ROOT).as_posix()
        for package in OUR_PACKAGES
        for p in (REPO_ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert ours - closure <= excluded, "not run in the image: add these to Dockerfile.dockerignore"
    assert {"scaling/simulate.py", "scaling/sim_timestep.py"} <= excluded


def test_the_image_context_alone_imports_every_entry_point(tmp_path: Path) -> None:
    """What the build context sends (our packages minus the dockerignore's exclusions) imports each entry."""
    excluded = _dockerignore_excluded()
    context = tmp_path / "var-task"
    for package in OUR_PACKAGES:
        for source in (REPO_ROOT / package).rglob("*.py"):
            name = source.relative_to(REPO_ROOT).as_posix()
            if name not in excluded and "__pycache__" not in source.parts:
                (context / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, context / name)
    done = run_packed(context, "".join(f"import {module}\n" for module in IMAGE_ENTRY_MODULES))
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_package_for_one_handler_holds_its_closure_only(tmp_path: Path) -> None:
    """The scaler alone: no serving app, no engines, no preload."""
    scaler = LAMBDA_HANDLERS["scaler"]
    manifest = build_packages(
        BuildRequest(cloud="aws", out_dir=tmp_path, source_root=REPO_ROOT, entry_points=(scaler,))
    )
    files = {entry.path for entry in manifest.artifact("function").files}  # type: ignore[union-attr]
    assert files == set(import_closure(REPO_ROOT, [handler_module(scaler)]))
    assert "functions/scaler/handler.py" in files and "functions/app.py" not in files
    assert not any(name.startswith("preload/") for name in files)


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("handler", r"entry point 'handler' must be module\.function"),
        ("functions.entry.nope.handler", r"entry point module 'functions\.entry\.nope' not found"),
        (
            "tests.conftest.handler",
            r"entry point module 'tests\.conftest' is not in our packages \(core, functions, preload",
        ),
    ],
)
def test_bad_entry_points_are_named(handler: str, message: str, tmp_path: Path) -> None:
    request = BuildRequest(
        cloud="aws", out_dir=tmp_path / "out", source_root=REPO_ROOT, entry_points=(handler,)
    )
    with pytest.raises(LayerBuildError, match=message):
        build_packages(request)


def test_cli_packs_the_handlers_it_is_given(tmp_path: Path) -> None:
    scaler = LAMBDA_HANDLERS["scaler"]
    args = ["-m", "llmfn", "layer", "build", "--cloud", "aws", "--out", "out", "--handler", scaler]
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "out" / "llmfn-function-aws.zip") as function:
        names = set(function.namelist())
    assert "functions/scaler/handler.py" in names and "functions/cloud/aws/entry.py" not in names
    bad = subprocess.run([sys.executable, *args[:-1], "nodots"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "error: entry point 'nodots' must be module.function" in bad.stderr
