#!/usr/bin/env python3
"""Set up and run llmfn on a fresh machine that has only Python >= 3.11 and pip.

    python3 tasks.py demo    # create .venv, install, run the main job locally on the embedded default
    python3 tasks.py test    # create .venv, install with test extras, lint, format-check, run pytest

Uses only the standard library. The install is skipped when pyproject.toml is unchanged since the
last successful install into .venv (a stamp file holds its hash).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def run(*cmd: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    """Run a command in the repository root, echoing it; exit with its status on failure."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if code != 0:
        sys.exit(code)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project editable with ``extras``, unless already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs before any check of the interpreter)
        sys.exit(f"llmfn needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"+ creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".llmfn-installed-{extras}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # torch is pinned in pyproject (torch==2.13.0, the CPU build where a local wheel is provided).
    run(PY, "-m", "pip", "install", "--quiet", "-e", f".[{extras}]")
    stamp.write_text(digest)


def demo() -> None:
    """The main job on the embedded default (see README)."""
    ensure_venv("serve")
    run(BIN / "llmfn", "--version")


def test() -> None:
    """Lint, check formatting, run the whole test suite. No test collected is a failure."""
    ensure_venv("test")
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(PY, "-m", "pytest", *sys.argv[2:])


TASKS = {"demo": demo, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(TASKS)}}} [pytest args for test]")
    TASKS[sys.argv[1]]()
