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
