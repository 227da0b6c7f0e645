"""Helpers shared by the subcommands' option handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import InputError

PROFILE_SECTIONS = frozenset({"service", "instance", "platform", "prices", "cold_start"})


def read_policy_config(path: Path | None) -> dict[str, Any]:
    """The ``--policy-config`` object of ``PolicyConfig`` fields ({} without the flag).

    The file is either JSON of ``PolicyConfig`` fields or a deployment profile (JSON or TOML, see
    :mod:`scaling.profile`), whose instance concurrency and cold start become
    ``concurrency_per_instance`` and ``cold_start_s``. Raises ``InputError`` (``FileNotFoundError``
    when missing) naming the flag and the file when it is unreadable or not an object; this is CLI
    code, so its messages name the flag.
    """
    if path is None:
        return {}
    if path.suffix == ".toml":
        return _profile_overrides(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--policy-config {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise InputError(
            f"--policy-config {str(path)!r} is a directory; give a JSON or TOML file", path=path
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"--policy-config {str(path)!r}: not valid JSON ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise InputError(
            f"--policy-config {str(path)!r}: must hold a JSON object of PolicyConfig fields", path=path
        )
    if data and {k for k in data if not str(k).startswith("_")} <= PROFILE_SECTIONS:
        return _profile_overrides(path)
    return data


def _profile_overrides(path: Path) -> dict[str, Any]:
    """A deployment profile as ``PolicyConfig`` overrides (what a policy plans with)."""
    from core.errors import ScalingError
    from scaling.profile import read_profile

    try:
        profile = read_profile(path)
    except ScalingError as exc:  # the profile's own refusal, said as the flag's; a bug keeps its traceback
        raise InputError(f"--policy-config: {exc}", path=path) from None
    overrides: dict[str, Any] = {}
    if profile.concurrency is not None:
        overrides["concurrency_per_instance"] = profile.concurrency
    if profile.cold_start is not None:
        overrides["cold_start_s"] = profile.cold_start.total_s
    return overrides


PROGRESS_FROM_BYTES = 16 * 2**20
"""Trace files at least this large (16 MiB) show a progress bar while they are read."""


def read_trace_with_progress(path: Path, seed: int = 0, quiet: bool = False) -> Any:
    """``scaling.traces.read_trace`` with a progress bar on stderr (bytes read) for large files.

    The bar is skipped for small files and with ``quiet`` (e.g. ``--json``); the reader streams the file
    and refuses one whose requests cannot fit in memory, saying how much they need.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from scaling.traces import read_trace

    size = path.stat().st_size if path.is_file() else 0
    with Progress(
        TextColumn("reading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=quiet or size < PROGRESS_FROM_BYTES,
    ) as bar:
        task = bar.add_task(path.name, total=size)
        return read_trace(path, seed=seed, progress=lambda done, total: bar.update(task, completed=done))
