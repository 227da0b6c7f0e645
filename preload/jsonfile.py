"""JSON files of a checkpoint (safetensors headers, the shard index, ``config.json``), parsed with one
error for every way they can be wrong: a :class:`~core.errors.PreloadError` naming the file."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import PreloadError
from preload.confine import confined


class _DuplicateKeyError(PreloadError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def parse_json(raw: bytes | str, file: str | Path, what: str, *, offset: int | None = None) -> object:
    """``raw`` parsed as JSON, or one :class:`PreloadError` naming ``file`` (``what`` says which part):
    not UTF-8, not JSON, a key given twice (the error's ``tensor`` is that key), or nested deeper than
    the parser's recursion limit (about 1,000 levels; no checkpoint file nests more than a few)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKeyError as exc:
        raise PreloadError(f"{what}: key named twice", file=file, tensor=exc.key, offset=offset) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PreloadError(f"{what} is not valid JSON: {exc}", file=file, offset=offset) from None
    except RecursionError:
        raise PreloadError(
            f"{what} is nested too deeply (over Python's recursion limit) to be a checkpoint's JSON",
            file=file,
            offset=offset,
        ) from None


def read_json(model_dir: Path, path: Path, what: str) -> object:
    """The JSON file ``path`` of ``model_dir``, links resolved and confined to it (:mod:`preload.confine`)."""
    real = confined(model_dir, path)
    try:
        raw = real.read_bytes()
    except OSError as exc:
        raise PreloadError(f"{what} cannot be read: {exc.strerror}", file=path) from None
    return parse_json(raw, path, what)
