"""The example CI workflow runs the tests before promoting, and every flag it passes exists."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
import yaml

from llmfn.cli import app

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "promote.yml"


def test_workflow_tests_first_then_promotes_with_known_flags() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert any(step.get("run") == "python3 tasks.py test" for step in jobs["test"]["steps"])
    assert jobs["promote"]["needs"] == "test"
    promote_step = next(step for step in jobs["promote"]["steps"] if step.get("name") == "Promote")
    words = shlex.split(promote_step["run"])
    assert words[:2] == ["llmfn", "promote"]
    command = typer.main.get_command(app).commands["promote"]  # type: ignore[attr-defined]
    known = {opt for param in command.params for opt in param.opts}
    flags = [w for w in words if w.startswith("--")]
    assert {"--stack", "--model-revision", "--steps", "--max-error-rate", "--max-p95"} <= set(flags)
    assert set(flags) <= known
    secrets = str(jobs["promote"])
    assert "secrets.TENCENTCLOUD_SECRETID" in secrets and "secrets.AWS_ROLE_ARN" in secrets
