"""CLI input errors: --policy-config (simulate, scale, dev) is read one way, a bad file is one line naming
the flag; every input error is one ``error:`` line (its text printed as is), exit status 2."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from llmfn.commands.options import read_policy_config

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_policy_config_is_a_json_object(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"max_reserved": 4}')
    assert read_policy_config(good) == {"max_reserved": 4}
    assert read_policy_config(None) == {}


@pytest.mark.parametrize(
    "content, message",
    [("not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object"), (b"\xff\xfe", "not valid JSON")],
)
def test_bad_policy_config_names_the_flag(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=rf"--policy-config .*bad\.json.*{message}"):
        read_policy_config(path)
    with pytest.raises(FileNotFoundError, match=r"--policy-config .*no such file"):
        read_policy_config(tmp_path / "missing.json")


def _llmfn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("LLMFN_API_KEY", "LLMFN_PUBLIC", "LLMFN_DEBUG")
    }
    return subprocess.run(
        [sys.executable, "-m", "llmfn", *args],
        cwd=REPO_ROOT,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_error_lines_keep_text_in_square_brackets(tmp_path: Path) -> None:
    """Issue 13.10: rich read "[-8, 8]" as markup and dropped it."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 8]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    line = _one_error_line(_llmfn("preload", str(tmp_path), "--prefetch-only"))
    assert "data_offsets [-8, 8] are not [begin, end]" in line


def test_a_shard_that_is_a_directory_is_refused_by_name(tmp_path: Path) -> None:
    """Issue 13.8: IsADirectoryError traceback, rc 1."""
    (tmp_path / "model.safetensors").mkdir()
    line = _one_error_line(_llmfn("preload", str(tmp_path), "--prefetch-only"))
    assert "shard is not a regular file" in line and "model.safetensors" in line


def test_serve_on_a_public_address_needs_a_key_or_no_auth() -> None:
    line = _one_error_line(_llmfn("serve", "--engine", "null", "--host", "0.0.0.0", "--port", "1"))
    assert "api_key: required because host '0.0.0.0' is not a loopback address" in line
    assert "--no-auth" in line and "LLMFN_API_KEY" in line


def test_a_deployment_profile_is_a_policy_config_too(tmp_path: Path) -> None:
    import subprocess
    import sys

    profile = tmp_path / "measured.toml"
    profile.write_text(
        "[instance]\nconcurrency = 4\n[cold_start]\nweights_gb = 8\nstorage_gb_per_s = 2\nload_s = 1\n"
    )
    assert read_policy_config(profile) == {"concurrency_per_instance": 4, "cold_start_s": 5.0}
    as_json = tmp_path / "measured.json"
    as_json.write_text('{"_note": "from llmfn load", "cold_start": {"total_s": 2.5}}')
    assert read_policy_config(as_json) == {"cold_start_s": 2.5}
    bad = tmp_path / "bad.toml"
    bad.write_text("[instance]\nslots = 4\n")
    with pytest.raises(ValueError, match=r"--policy-config: .*bad\.toml: unknown key"):
        read_policy_config(bad)
    exe = Path(sys.executable).with_name("llmfn")
    out = subprocess.run(
        [str(exe), "dev", "--policy-config", str(profile), "--slots", "1", "--engine", "null"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        out.returncode == 2 and "plans with 4 concurrent requests per instance but --slots is 1" in out.stderr
    )
