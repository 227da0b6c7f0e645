"""Declared requirements: the runtime layer's pip requirements read from ``pyproject.toml`` extras."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from layers.build import LayerBuildError

_SELF_REFERENCE = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)\[(?P<extras>[^\]]+)\]$")


def requirements_from_pyproject(pyproject: Path, extras: Sequence[str]) -> list[str]:
    """The requirements of ``extras`` (self-references such as ``llmfn[preload]`` expanded), sorted, unique.

    Raises LayerBuildError naming an unknown extra.
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    declared: dict[str, list[str]] = project.get("optional-dependencies", {})
    own_name = project["name"]
    found: set[str] = set()
    pending = list(extras)
    seen: set[str] = set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in declared:
            raise LayerBuildError(
                f"extra {extra!r} is not declared in {pyproject}; declared: {', '.join(sorted(declared))}"
            )
        for requirement in declared[extra]:
            match = _SELF_REFERENCE.match(requirement.strip())
            if match and match["name"] == own_name:
                pending += [e.strip() for e in match["extras"].split(",")]
            else:
                found.add(requirement.strip())
    return sorted(found)
