"""--policy-config (simulate, scale, dev) is read one way: a bad file is one line naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmfn.commands.options import read_policy_config


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
