"""Bad trace files are one clear error naming the file (and row and field), never a traceback or an
out-of-memory; ServeGen's quiet windows are valid (issues 13.6, 13.11, 15.3)."""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling.traces import MAX_SPAN_S, TraceFormatError, read_servegen, read_trace

SERVEGEN_HEADER = (
    "t_s,window_s,rate_rps,requests_est,active_clients,rate_weighted_client_cv,"
    "mean_input_tokens_est,mean_output_tokens_est,token_stats_rate_coverage\n"
)


def _servegen(tmp_path: Path, *rows: str, name: str = "sg.csv") -> Path:
    path = tmp_path / name
    path.write_text(SERVEGEN_HEADER + "".join(r + "\n" for r in rows))
    return path


def test_servegen_empty_windows_are_quiet_time_and_totals_are_kept(tmp_path: Path) -> None:
    path = _servegen(
        tmp_path,
        "0,600,10.5,6300,4,2.0,300,200,0.9",
        "600,600,0,0,0,,,,",  # collection gap: rate 0, empty statistics
        "1200,600,3.25,1950,2,40.0,500,100,0.8",  # very bursty clients
        # 1800..2400 missing: a gap between windows is quiet time too
        "2400,60,0.01,1,1,1000,20,10,0.1",  # a tiny rate with a huge CV
    )
    for seed in range(5):
        trace = read_servegen(path, seed=seed)
        per_s = trace.arrivals_per_second()
        assert trace.duration_s == 2460 and len(per_s) == 2460
        assert per_s[:600].sum() == 6300  # round(10.5 x 600)
        assert per_s[600:1200].sum() == 0
        assert per_s[1200:1800].sum() == 1950  # kept whatever the CV
        assert per_s[1800:2400].sum() == 0
        assert per_s[2400:].sum() == 1  # round(0.01 x 60) = 1
        assert np.all(trace.count > 0) and trace.count.dtype == np.int64
    bursty = read_servegen(path, seed=0).arrivals_per_second()[1200:1800]
    assert bursty.std() > 3 * np.sqrt(3.25)  # CV 40 gives far burstier seconds than Poisson


def test_a_servegen_file_of_quiet_windows_only_reads_and_is_not_simulated(tmp_path: Path) -> None:
    from scaling.providers import get_provider
    from scaling.simulate import Settings, simulate

    trace = read_trace(_servegen(tmp_path, "0,600,0,0,0,,,,", "600,600,0,0,0,,,,"))
    assert trace.requests == 0 and trace.duration_s == 1200
    with pytest.raises(ValueError, match=r"has no requests .*nothing to simulate"):
        simulate(trace, ["hybrid"], Settings(provider=get_provider("scf")))


@pytest.mark.parametrize(
    "row, field",
    [
        ("0,0.5,1,1,1,1,1,1,1", "window_s"),
        ("0,0,1,1,1,1,1,1,1", "window_s"),
        ("0,5000000000,1,1,1,1,1,1,1", "window_s"),
        ("0,600,1e30,1,1,1,1,1,1", "rate_rps"),
        ("0,600,-1,1,1,1,1,1,1", "rate_rps"),
        ("0,600,1,1,1,1,-5,1,1", "mean_input_tokens_est"),
        ("0,600,1,1,1,1,5,-1,1", "mean_output_tokens_est"),
        ("0,600,1,1,1,1,1e30,1,1", "mean_input_tokens_est"),
        ("0,600,2,1,1,,1,1,1", "rate_weighted_client_cv"),  # empty but traffic in the window
        ("0,600,nan,1,1,1,1,1,1", "rate_rps"),
        ("x,600,1,1,1,1,1,1,1", "t_s"),
    ],
)
def test_servegen_bad_windows_name_line_and_field(tmp_path: Path, row: str, field: str) -> None:
    with pytest.raises(TraceFormatError, match=rf"sg\.csv:2: {field}"):
        read_trace(_servegen(tmp_path, row))


def test_long_spans_are_refused_in_one_line(tmp_path: Path) -> None:
    stray = tmp_path / "stray.csv"
    stray.write_text("timestamp,input_tokens,output_tokens\n1,10,10\n2e9,10,10\n")
    with pytest.raises(
        TraceFormatError, match=rf"stray\.csv: timestamps span 1,999,999,999 s; .*{MAX_SPAN_S:,}"
    ):
        read_trace(stray)
    windows = _servegen(tmp_path, "0,600,1,1,1,1,1,1,1", "3000000,600,1,1,1,1,1,1,1")
    with pytest.raises(TraceFormatError, match=r"sg\.csv: windows up to line 3 span"):
        read_trace(windows)
    overlap = _servegen(tmp_path, "0,600,1,1,1,1,1,1,1", "300,600,1,1,1,1,1,1,1", name="o.csv")
    with pytest.raises(TraceFormatError, match=r"o\.csv:3: t_s 300 starts before"):
        read_trace(overlap)


@pytest.mark.parametrize(
    "row, field",
    [
        ("1,1e30,5", "input_tokens"),
        ("1,5,1e30", "output_tokens"),
        ("1,inf,5", "input_tokens"),
        ("inf,1,1", "timestamp"),
    ],
)
def test_request_rows_with_absurd_values_name_the_field(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "big.csv"
    path.write_text(f"timestamp,input_tokens,output_tokens\n0,1,1\n{row}\n")
    with pytest.raises(TraceFormatError, match=rf"big\.csv:3: {field}"):
        read_trace(path)


def test_binary_directory_and_fifo_are_named(tmp_path: Path) -> None:
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(TraceFormatError, match=r"weights\.bin: binary file"):
        read_trace(binary)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"timestamp,input_tokens,output_tokens\n1,2,3\xe9\n")
    with pytest.raises(TraceFormatError, match=r"latin\.csv: not UTF-8"):
        read_trace(latin)
    with pytest.raises(TraceFormatError, match="is a directory"):
        read_trace(tmp_path)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(TraceFormatError, match=r"pipe\.csv.* not a regular file"):
        read_trace(fifo)


_ROW_TEXT = st.text(alphabet=string.printable + "\x00\u00e9\ufeff", max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.sampled_from(
        [
            "timestamp,input_tokens,output_tokens",
            "TIMESTAMP,ContextTokens,GeneratedTokens",
            SERVEGEN_HEADER.strip(),
            "",
        ]
    ),
    rows=st.lists(
        st.one_of(
            _ROW_TEXT,
            st.lists(
                st.one_of(
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.integers(-(10**40), 10**40).map(str),
                    st.sampled_from(["", "nan", "2023-11-16 18:17:03.9799600", "1e30", "-0"]),
                ),
                min_size=1,
                max_size=9,
            ).map(",".join),
        ),
        max_size=6,
    ),
    suffix=st.sampled_from([".csv", ".jsonl"]),
    raw=st.binary(max_size=64),
)
def test_any_file_reads_or_fails_with_one_error_naming_it(
    tmp_path: Path, header: str, rows: list[str], suffix: str, raw: bytes
) -> None:
    path = tmp_path / f"fuzz{suffix}"
    data = (header + "\n" + "\n".join(rows)).encode("utf-8", "surrogatepass") + raw
    path.write_bytes(data)
    try:
        trace = read_trace(path)
    except TraceFormatError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert trace.duration_s <= MAX_SPAN_S and trace.requests >= 0
    assert np.all(np.isfinite(trace.input_tokens)) and np.all(trace.count >= 0)
