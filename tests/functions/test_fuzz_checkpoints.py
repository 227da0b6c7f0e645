"""Hypothesis against the checkpoint headers the inference function loads (issue 13, "keep it fixed"): any
bytes, any header JSON, any entry shape are either read or refused with a ``PreloadError`` naming the file,
never another exception (a traceback at start-up)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.errors import PreloadError
from preload.confine import allowed_roots
from preload.plan import DTYPE_SIZES, plan_checkpoint, read_header
from tests.fuzzing import json_values

FUZZ = settings(
    max_examples=300, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
sizes = st.one_of(
    st.integers(-5, 64), st.sampled_from([2**63, 2**64, 10**30]), st.floats(allow_nan=True), json_values
)
entry = st.one_of(
    st.fixed_dictionaries(
        {
            "dtype": st.one_of(st.sampled_from(sorted(DTYPE_SIZES)), json_values),
            "shape": st.one_of(st.lists(sizes, max_size=3), json_values),
            "data_offsets": st.one_of(st.lists(sizes, max_size=3), json_values),
        }
    ),
    json_values,
)
headers = st.one_of(
    st.dictionaries(st.text(max_size=8), entry, max_size=4),
    st.fixed_dictionaries({"__metadata__": json_values}, optional={"w": entry}),
    json_values,
)


def shard_bytes(header: Any, data: bytes, declared_extra: int) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", max(0, len(raw) + declared_extra)) + raw + data


@FUZZ
@given(header=headers, data=st.binary(max_size=64), declared_extra=st.sampled_from([0, 0, 0, -1, 1, 2**40]))
@example(header={"w": {"dtype": [], "shape": [], "data_offsets": []}}, data=b"", declared_extra=0)  # found
def test_any_header_is_read_or_refused_by_name(header: Any, data: bytes, declared_extra: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        path.write_bytes(shard_bytes(header, data, declared_extra))
        try:
            read_header(path)
        except PreloadError as exc:
            assert "model.safetensors" in str(exc)
        with contextlib.suppress(PreloadError):
            plan_checkpoint(tmp)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes_are_read_or_refused_by_name(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        path.write_bytes(raw)
        try:
            read_header(path)
        except PreloadError as exc:
            assert "model.safetensors" in str(exc)


# -- issue 22, items 2 and 9: deep nesting, boolean dimensions, config.json, links out of the directory ---

SECRET = b"root:x:0:0:FUZZ-SECRET\n" * 4
nesting = st.integers(1, 250_000)


def _deep(depth: int, open_: str, close: str) -> str:
    return open_ * depth + close * depth


@FUZZ
@given(
    depth=nesting, where=st.sampled_from(["header", "index", "config"]), kind=st.sampled_from(["[]", "{}"])
)
@example(depth=200_000, where="header", kind="[]")  # issue 22: RecursionError before
def test_json_nested_to_any_depth_is_read_or_refused_by_name(depth: int, where: str, kind: str) -> None:
    inner = _deep(depth, "[", "]") if kind == "[]" else '{"a":' * depth + "1" + "}" * depth
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good = {"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
        if where == "header":
            raw = (
                '{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "x": ' + inner + "}"
            ).encode()
            (root / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0")
            target = root / "model.safetensors"
        else:
            (root / "model.safetensors").write_bytes(shard_bytes(good, b"\0", 0))
            name = "model.safetensors.index.json" if where == "index" else "config.json"
            (root / name).write_text('{"weight_map": {"w": "model.safetensors"}, "x": ' + inner + "}")
            target = root / name
        try:
            plan_checkpoint(tmp)
        except PreloadError as exc:
            assert exc.file == str(target) and "\n" not in str(exc)


dims = st.one_of(st.integers(0, 4), st.booleans(), st.floats(0, 4), st.just(None), st.text(max_size=2))


@FUZZ
@given(shape=st.lists(dims, max_size=3))
@example(shape=[True, 1])  # issue 22: TypeError at load before
def test_a_shape_is_planned_only_when_every_dimension_is_an_integer(shape: list[Any]) -> None:
    ints = all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    nbytes = math.prod(shape) if ints else 0
    header = {"w": {"dtype": "U8", "shape": shape, "data_offsets": [0, nbytes]}}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model.safetensors").write_bytes(shard_bytes(header, bytes(nbytes), 0))
        try:
            plan = plan_checkpoint(tmp)
        except PreloadError as exc:
            assert not ints and exc.field == "shape" and exc.tensor == "w"
        else:
            assert ints and plan.tensors[0].shape == tuple(shape)


TRUE_CONFIG = {"vocab_size": 6, "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2}
CHECKED = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers"}


def _small_llm(root: Path) -> None:
    """A header-only Llama-shaped checkpoint (U8, so shapes are bytes): the truth of TRUE_CONFIG."""
    tensors = {"model.embed_tokens.weight": [6, 4], "model.norm.weight": [4]}
    for layer in range(2):
        tensors[f"model.layers.{layer}.mlp.up_proj.weight"] = [8, 4]
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = math.prod(shape)
        header[name] = {"dtype": "U8", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    (root / "model.safetensors").write_bytes(shard_bytes(header, bytes(offset), 0))


@FUZZ
@given(
    changes=st.dictionaries(
        st.sampled_from([*sorted(CHECKED), "num_attention_heads", "torch_dtype", "text_config"]),
        st.one_of(st.integers(-2, 12), st.booleans(), json_values),
        max_size=3,
    )
)
@example(changes={"vocab_size": 7})  # issue 22: never named config.json before
def test_a_config_json_is_planned_only_when_it_agrees_with_the_weights(changes: dict[str, Any]) -> None:
    config = {**TRUE_CONFIG, **changes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _small_llm(root)
        (root / "config.json").write_text(json.dumps(config))
        disagrees = any(
            config[key] is not None
            and (type(config[key]) is not int or config[key] != TRUE_CONFIG[key])
            and not (key == "num_hidden_layers" and type(config[key]) is int and 0 < config[key] < 2)
            for key in CHECKED
        )  # fewer layers declared than stored is left to the engine (extra layers: MTP)
        try:
            plan_checkpoint(tmp)
        except PreloadError as exc:
            assert exc.file == str(root / "config.json"), exc
        else:
            assert not disagrees, config


link_targets = st.one_of(
    st.sampled_from(["SECRET_ABS", "../outside/passwd", "../../outside/passwd", "/etc/passwd", "/dev/zero"]),
    st.sampled_from(
        ["blob", "./blob", "sub/../blob", "../m/blob", "../../blobs/blob", "../../../x/blobs/blob"]
    ),
)


@FUZZ
@given(
    target=link_targets,
    name=st.sampled_from(["model.safetensors", "model.safetensors.index.json", "config.json"]),
    hub=st.booleans(),
)
def test_a_link_is_followed_only_inside_the_model_directory(target: str, name: str, hub: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "outside").mkdir()
        (base / "outside" / "passwd").write_bytes(SECRET)
        model = base / "repo" / "snapshots" / "c0ffee" if hub else base / "m"
        model.mkdir(parents=True)
        (base / "repo" / "blobs").mkdir(parents=True, exist_ok=True)
        _small_llm(model)
        if name == "model.safetensors.index.json":
            weight_map = {n: "model.safetensors" for n in json.loads(_header_of(model))}
            content = json.dumps({"weight_map": weight_map}).encode()
        elif name == "config.json":
            content = json.dumps(TRUE_CONFIG).encode()
        else:
            content = (model / name).read_bytes()
        for place in (model / "blob", base / "repo" / "blobs" / "blob"):
            place.write_bytes(content)
        link = model / name
        link.unlink(missing_ok=True)
        link.symlink_to(str(base / "outside" / "passwd") if target == "SECRET_ABS" else target)
        real = Path(os.path.realpath(link))
        inside = real.exists() and any(real.is_relative_to(root) for root in allowed_roots(model))
        dangling = not real.exists()  # a link to nothing is never read: refused as missing, or ignored
        try:
            plan_checkpoint(model)
        except PreloadError as exc:
            assert b"FUZZ-SECRET" not in str(exc).encode()
            assert inside or dangling or (exc.file == str(link) and "outside the model directory" in str(exc))
        else:
            assert inside or dangling, f"{link} -> {target} was read"


def _header_of(model: Path) -> str:
    raw = (model / "model.safetensors").read_bytes()
    return raw[8 : 8 + int.from_bytes(raw[:8], "little")].decode()
