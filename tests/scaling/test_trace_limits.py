"""Traces are read as a stream with bounded memory and a progress callback; what cannot fit or cannot be
replayed is refused in one line naming the field and the bound; timestamps keep their UTC offset and
token counts are whole numbers (issue 22.8, 22.10, 22.14)."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import pytest

from scaling.traces import (
    MAX_TRACE_REQUESTS,
    TraceFormatError,
    available_memory_bytes,
    check_has_work,
    read_trace,
)
from tests.scaling.test_cli import llmfn
from tests.scaling.test_trace_input import _servegen

HEADER = "timestamp,input_tokens,output_tokens\n"


def _requests(tmp_path: Path, *rows: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


@pytest.mark.parametrize("offset", ["+08:00", "+0800", "Z"])
def test_a_utc_offset_after_seven_fractional_digits_is_kept(tmp_path: Path, offset: str) -> None:
    hours = 0 if offset == "Z" else 8
    path = _requests(
        tmp_path, f"2023-11-16 18:15:46.6805900{offset},1,2", f"2023-11-16 18:15:47.1805900{offset},1,2"
    )
    trace = read_trace(path)
    utc_seconds = (18 - hours) * 3600 + 15 * 60 + 46.68059
    assert trace.start_of_day_s == pytest.approx(utc_seconds)
    assert trace.arrival_s is not None and trace.arrival_s[1] == pytest.approx(0.5)


def test_rows_with_different_offsets_are_ordered_in_utc(tmp_path: Path) -> None:
    # 10:00:00+00:00 comes before 18:00:01+08:00 (= 10:00:01 UTC)
    path = _requests(
        tmp_path, "2023-11-16T18:00:01.1234567+08:00,1,1", "2023-11-16T10:00:00.1234567+00:00,1,1"
    )
    trace = read_trace(path)
    assert trace.arrival_s is not None and list(trace.arrival_s) == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize(("row", "field"), [("0,1.7,2", "input_tokens"), ("0,2,0.5", "output_tokens")])
def test_fractional_token_counts_are_refused_naming_the_field(tmp_path: Path, row: str, field: str) -> None:
    path = _requests(tmp_path, row)
    with pytest.raises(TraceFormatError, match=rf"t\.csv:2: {field} must be a whole number of tokens"):
        read_trace(path)


def test_whole_token_counts_written_as_floats_are_read(tmp_path: Path) -> None:
    trace = read_trace(_requests(tmp_path, "0,12.0,1e2"))
    assert (trace.input_tokens[0], trace.output_tokens[0]) == (12.0, 100.0)


def test_an_all_zero_token_trace_names_the_token_columns_not_a_policy_field(tmp_path: Path) -> None:
    path = _requests(tmp_path, "0,0,0", "1,0,0", "2,0,0")
    with pytest.raises(TraceFormatError, match=r"input_tokens and output_tokens .* are 0 in every row"):
        check_has_work(read_trace(path), path)
    run = llmfn("simulate", "--trace", str(path))
    assert run.returncode != 0
    assert "input_tokens and output_tokens" in run.stderr and "p95_latency_s" not in run.stderr
    assert "Traceback" not in run.stderr


def test_a_servegen_row_with_a_huge_rate_x_window_is_refused_naming_both(tmp_path: Path) -> None:
    path = _servegen(tmp_path, "0,2678400,1000000,2678400000000,1,1,10000000,10000000,1")
    with pytest.raises(TraceFormatError) as caught:
        read_trace(path)
    message = str(caught.value)
    assert "sg.csv:2: rate_rps x window_s = 1e+06 x 2.6784e+06" in message
    assert f"at most {MAX_TRACE_REQUESTS:,} requests" in message
    run = llmfn("simulate", "--trace", str(path))  # one line, before any allocation
    assert run.returncode != 0 and "rate_rps x window_s" in run.stderr and "Traceback" not in run.stderr


def test_the_request_bound_counts_every_window(tmp_path: Path) -> None:
    rows = [f"{i * 86400},86400,60000,0,0,1,10,10,1" for i in range(2)]  # 5.2 G requests each: 10.4 G in all
    path = _servegen(tmp_path, *rows)
    with pytest.raises(TraceFormatError, match=r"sg\.csv:3: rate_rps x window_s"):
        read_trace(path)
    assert read_trace(_servegen(tmp_path, rows[0], name="one.csv")).requests == 5_184_000_000


def test_a_trace_that_cannot_fit_is_refused_saying_how_much_it_needs(tmp_path: Path) -> None:
    path = _requests(tmp_path, *(f"{i},100,10" for i in range(10_000)))
    with pytest.raises(TraceFormatError) as caught:
        read_trace(path, memory_limit_bytes=100_000)
    message = str(caught.value)
    assert str(path) in message and "about 10,0" in message and "requests, which need about" in message
    assert "GiB is available" in message and "split the trace" in message
    assert read_trace(path, memory_limit_bytes=10**9).requests == 10_000
    assert (available_memory_bytes() or 1) > 0


def test_reading_streams_with_progress_and_bounded_memory(tmp_path: Path) -> None:
    rows = 200_000
    path = tmp_path / "many.csv"
    with path.open("w") as out:
        out.write(HEADER)
        out.writelines(f"{i * 0.01:.2f},{i % 4000 + 1},{i % 500}\n" for i in range(rows))
    size = path.stat().st_size
    seen: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        trace = read_trace(path, progress=lambda done, total: seen.append((done, total)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert trace.requests == rows
    assert len(seen) >= 3 and seen[-1] == (size, size)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen)) and {t for _, t in seen} == {size}
    # the file (about 3.4 MB) is never held as text or as Python tuples: compact columns and the Trace
    assert peak < rows * 100 + 2**20, f"peak {peak:,} B for {rows:,} rows"
