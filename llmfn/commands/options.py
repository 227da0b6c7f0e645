"""Helpers shared by the subcommands' option handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_policy_config(path: Path | None) -> dict[str, Any]:
    """The ``--policy-config`` JSON object of ``PolicyConfig`` fields ({} without the flag).

    Raises ValueError naming the flag and the file when it is missing, not JSON or not an object.
    """
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--policy-config {str(path)!r}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--policy-config {str(path)!r}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--policy-config {str(path)!r}: must hold a JSON object of PolicyConfig fields")
    return data
