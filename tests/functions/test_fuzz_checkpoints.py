"""Hypothesis against the checkpoint headers the inference function loads (issue 13, "keep it fixed"): any
bytes, any header JSON, any entry shape are either read or refused with a ``PreloadError`` naming the file,
never another exception (a traceback at start-up)."""

from __future__ import annotations

import contextlib
import json
import struct
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from preload.errors import PreloadError
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
