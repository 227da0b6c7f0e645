"""Preload plans: safetensors headers and the shard index parsed and validated, tensors put in stages.

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`` and the data;
offsets are relative to the end of the header. Every check the loader relies on is made here, once,
so that a plan that exists is a plan that can be loaded byte for byte.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import PreloadError
from preload.config_check import check_config
from preload.confine import confine_directory, confined
from preload.events import STAGE_BLOCKS, STAGE_EMBEDDING, STAGE_FINAL
from preload.jsonfile import parse_json, read_json

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
MAX_HEADER_BYTES = 100 * 1024 * 1024
"""Headers larger than this (100 MiB, safetensors' own limit) are refused as corrupt."""

DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
"""Bytes per element of every safetensors dtype the loader accepts."""

_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor: where its bytes are (absolute offsets ``start``..``end`` in ``file``) and what they are."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.end - self.start

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class ShardFile:
    """One safetensors file: its size in bytes, where its data starts, its raw header bytes."""

    path: Path
    size: int
    data_start: int
    header: bytes = field(repr=False)
    metadata: dict[str, str] = field(default_factory=dict)
    real_path: Path | None = None
    """``path`` with its links resolved, checked to be inside the model directory (``None``: not a
    link-checked local file); the loader opens this one, so a link swapped after planning is not followed."""

    @property
    def open_path(self) -> Path:
        """The file to open: the checked :attr:`real_path` when there is one."""
        return self.real_path if self.real_path is not None else self.path


@dataclass(frozen=True)
class Stage:
    """The tensors one stage loads, in the order they are read."""

    name: str
    tensors: tuple[TensorEntry, ...]

    @property
    def nbytes(self) -> int:
        """Bytes the stage reads."""
        return sum(t.nbytes for t in self.tensors)


@dataclass(frozen=True)
class PreloadPlan:
    """A validated checkpoint: its files and its tensors grouped into the loading stages.

    ``stages`` holds the reading stages (``embedding``, ``blocks``, ``final``), each possibly empty;
    the ``runtime`` and ``engine`` stages move no checkpoint bytes and are run by the loader.
    """

    model_dir: Path
    files: tuple[ShardFile, ...]
    stages: tuple[Stage, ...]

    @property
    def tensors(self) -> tuple[TensorEntry, ...]:
        """Every tensor, in reading order."""
        return tuple(t for stage in self.stages for t in stage.tensors)

    @property
    def total_bytes(self) -> int:
        """Bytes of tensor data in the checkpoint (headers excluded)."""
        return sum(stage.nbytes for stage in self.stages)

    @property
    def file_bytes(self) -> int:
        """Bytes of the checkpoint files, headers included."""
        return sum(f.size for f in self.files)


def header_bytes_needed(prefix: bytes, size: int, path: str | Path) -> int:
    """Bytes of the file up to the end of its header (``8 + header length``), from its first 8 bytes.

    Refuses a file too short for a header and a header length that cannot fit in ``size`` bytes.
    """
    if len(prefix) < 8:
        raise PreloadError("file too short for a safetensors header (truncated?)", file=path, offset=0)
    header_len = int.from_bytes(prefix[:8], "little")
    if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
        raise PreloadError(
            f"header length {header_len} B does not fit in the {size} B file (corrupt or truncated)",
            file=path,
            offset=0,
        )
    return 8 + header_len


def read_header(path: Path, real_path: Path | None = None) -> tuple[ShardFile, list[TensorEntry]]:
    """Parse and validate one local safetensors file's header (see :func:`parse_header`), read from
    ``real_path`` (``path`` resolved and confined, :func:`preload.confine.confined`) when given."""
    opened = real_path if real_path is not None else path
    try:
        info = opened.stat()
        if not stat.S_ISREG(info.st_mode):  # a directory raises IsADirectoryError, a FIFO blocks
            raise PreloadError("shard is not a regular file (a directory, FIFO or device?)", file=path)
        size = info.st_size
        with open(opened, "rb") as fh:
            prefix = fh.read(8)
            head = prefix + fh.read(header_bytes_needed(prefix, size, path) - 8)
    except FileNotFoundError:
        raise PreloadError("shard file is missing", file=path) from None
    shard, entries = parse_header(path, size, head)
    return (replace(shard, real_path=real_path) if real_path is not None else shard), entries


def parse_header(path: Path, size: int, head: bytes) -> tuple[ShardFile, list[TensorEntry]]:
    """Validate the header ``head`` (the file's first ``8 + header length`` bytes) of a ``size``-byte file.

    Returns the file and its tensors by offset. Refuses (:class:`PreloadError`): a file shorter than
    its header, a header that is not a JSON object of valid entries, duplicate names, unknown dtypes,
    ``dtype x shape`` different from the byte length, overlapping or non-contiguous offsets, data that
    ends before or after the end of the file.
    """
    data_start = header_bytes_needed(head[:8], size, path)
    if len(head) < data_start:
        raise PreloadError(f"header cut short: {len(head)} of {data_start} B", file=path, offset=len(head))
    prefix, raw = head[:8], head[8:data_start]
    header = parse_json(raw, path, "header", offset=8)
    if not isinstance(header, dict):
        raise PreloadError("header is not a JSON object", file=path, offset=8)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise PreloadError("__metadata__ must map strings to strings", file=path, offset=8)
    entries = [_parse_entry(path, name, info, data_start) for name, info in header.items()]
    entries.sort(key=lambda t: (t.start, t.end))
    expected = data_start
    for entry in entries:
        if entry.start != expected:
            kind = "overlaps the previous tensor" if entry.start < expected else "leaves a gap before it"
            raise PreloadError(f"tensor data {kind}", file=path, tensor=entry.name, offset=entry.start)
        expected = entry.end
    if expected != size:
        last = entries[-1].name if entries else None
        if expected > size:
            raise PreloadError(
                f"file is truncated: data needs {expected} B, the file has {size} B",
                file=path,
                tensor=last,
                offset=size,
            )
        raise PreloadError(
            f"{size - expected} unexpected bytes after the last tensor",
            file=path,
            tensor=last,
            offset=expected,
        )
    shard = ShardFile(
        path=path, size=size, data_start=data_start, header=prefix + raw, metadata=dict(metadata)
    )
    return shard, entries


def _parse_entry(path: Path, name: str, info: object, data_start: int) -> TensorEntry:
    if not isinstance(info, dict):
        raise PreloadError("header entry is not an object", file=path, tensor=name, offset=8)
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise PreloadError(
            f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_SIZES)}", file=path, tensor=name, offset=8
        )
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):  # JSON true is a Python int: refused here, not by torch at load time
        raise PreloadError(
            f"{shape!r} is not a list of non-negative integers",
            file=path,
            tensor=name,
            offset=8,
            field="shape",
            value=shape,
            allowed="a list of non-negative integers",
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        or offsets[1] < offsets[0]
    ):
        raise PreloadError(f"data_offsets {offsets!r} are not [begin, end]", file=path, tensor=name, offset=8)
    begin, end = offsets
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if end - begin != expected:
        raise PreloadError(
            f"{dtype} x {shape} is {expected} B but data_offsets span {end - begin} B",
            file=path,
            tensor=name,
            offset=data_start + begin,
        )
    return TensorEntry(name, dtype, tuple(shape), path, data_start + begin, data_start + end)


def _read_index(model_dir: Path) -> dict[str, str]:
    index_path = model_dir / INDEX_FILE
    index = read_json(model_dir, index_path, "index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise PreloadError("index has no weight_map of tensor name -> shard file", file=index_path)
    for name, shard in weight_map.items():
        if Path(shard).name != shard:
            raise PreloadError(f"shard {shard!r} is not a plain file name", file=index_path, tensor=name)
    return weight_map


def stage_of(name: str) -> str:
    """The stage a tensor belongs to, from its name (``embedding``, ``blocks`` or ``final``)."""
    if name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight") or name == "wte.weight":
        return STAGE_EMBEDDING
    if _LAYER_RE.search(name):
        return STAGE_BLOCKS
    return STAGE_FINAL


def _layer_of(name: str) -> int:
    match = _LAYER_RE.search(name)
    return int(match.group(1)) if match else -1


def plan_checkpoint(model_dir: str | os.PathLike[str]) -> PreloadPlan:
    """Read and validate every header (and the index) of the checkpoint in ``model_dir``.

    Uses ``model.safetensors.index.json`` when present (every shard it names must exist and hold exactly
    the tensors mapped to it), else ``model.safetensors``. Tensors are grouped into the ``embedding``,
    ``blocks`` (layer order, file-offset order within a layer) and ``final`` stages.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory {root} does not exist")
    confine_directory(root)  # the tokenizer and config too: transformers and vLLM read them unchecked
    weight_map, shard_names = read_weight_map(root)
    headers = []
    for shard_name in shard_names:
        path = root / shard_name
        if not path.exists():
            named = next(n for n, s in (weight_map or {}).items() if s == shard_name)
            raise PreloadError("shard named by the index is missing", file=path, tensor=named)
        headers.append(read_header(path, confined(root, path)))
    return plan_from_headers(root, weight_map, headers)


def read_weight_map(model_dir: Path) -> tuple[dict[str, str] | None, list[str]]:
    """The index's tensor -> shard map (``None`` for a single ``model.safetensors``) and the shard names."""
    if (model_dir / INDEX_FILE).exists():
        weight_map = _read_index(model_dir)
        return weight_map, sorted(set(weight_map.values()))
    if (model_dir / SINGLE_FILE).exists():
        return None, [SINGLE_FILE]
    raise PreloadError(f"no {INDEX_FILE} or {SINGLE_FILE} in the model directory", file=model_dir)


def plan_from_headers(
    root: Path,
    weight_map: dict[str, str] | None,
    headers: list[tuple[ShardFile, list[TensorEntry]]],
) -> PreloadPlan:
    """The plan of a checkpoint whose shard headers were parsed (:func:`parse_header`), in shard order.

    Every shard must hold exactly the tensors ``weight_map`` maps to it (when there is an index).
    """
    files: list[ShardFile] = []
    by_name: dict[str, TensorEntry] = {}
    for shard, entries in headers:
        path, shard_name = shard.path, shard.path.name
        files.append(shard)
        for entry in entries:
            if entry.name in by_name:
                raise PreloadError(
                    f"tensor also stored in {by_name[entry.name].file.name}",
                    file=path,
                    tensor=entry.name,
                    offset=entry.start,
                )
            if weight_map is not None and weight_map.get(entry.name) != shard_name:
                mapped = weight_map.get(entry.name)
                why = "not named by the index" if mapped is None else f"mapped to {mapped} by the index"
                raise PreloadError(
                    f"shard holds a tensor {why}", file=path, tensor=entry.name, offset=entry.start
                )
            by_name[entry.name] = entry
    for name, shard_name in (weight_map or {}).items():
        if name not in by_name:
            raise PreloadError(
                "tensor named by the index is absent from its shard", file=root / shard_name, tensor=name
            )
    file_order = {f.path: i for i, f in enumerate(files)}
    grouped: dict[str, list[TensorEntry]] = {STAGE_EMBEDDING: [], STAGE_BLOCKS: [], STAGE_FINAL: []}
    for entry in by_name.values():
        grouped[stage_of(entry.name)].append(entry)
    stages = tuple(
        Stage(name, tuple(sorted(entries, key=lambda t: (_layer_of(t.name), file_order[t.file], t.start))))
        for name, entries in grouped.items()
    )
    check_config(
        root, {t.name: t.shape for t in by_name.values()}, len({_layer_of(n) for n in by_name} - {-1})
    )
    return PreloadPlan(model_dir=root, files=tuple(files), stages=stages)
