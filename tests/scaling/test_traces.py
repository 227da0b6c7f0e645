"""Trace readers, malformed rows, synthetic generators and forecasting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaling.forecasting import choose_forecaster, forecast_profile, holt_winters, seasonal_naive
from scaling.traces import (
    TraceFormatError,
    diurnal_trace,
    poisson_trace,
    read_request_file,
    read_servegen,
    read_trace,
    spike_trace,
)


def test_azure_traces_read(traces_dir: Path) -> None:
    code = read_trace(traces_dir / "azure_llm_2023_code.csv")
    conv = read_trace(traces_dir / "azure_llm_2023_conv.csv")
    assert (code.requests, conv.requests) == (8819, 19366)
    assert code.per_request and np.all(np.diff(code.arrival_s) >= 0) and code.arrival_s[0] == 0
    assert abs(code.requests / code.duration_s - 2.57) < 0.05  # the README's measured mean rate
    assert code.arrivals_per_second().max() == 67  # its busiest second
    assert round(float(conv.input_tokens.mean())) == 1155 and round(float(conv.output_tokens.mean())) == 211
    assert 18 * 3600 <= code.start_of_day_s < 19 * 3600  # 18:17 wall clock


def test_generic_csv_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("timestamp,input_tokens,output_tokens\n10.5,100,20\n10.0,50,5\n12.25,7,8\n")
    trace = read_request_file(csv_path)
    assert trace.arrival_s.tolist() == [0.0, 0.5, 2.25] and trace.input_tokens.tolist() == [50, 100, 7]
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        read_request_file(tmp_path / "missing.csv")
    other = tmp_path / "other.csv"
    other.write_text("when,in,out\n1,2,3\n")
    with pytest.raises(TraceFormatError, match=r"other\.csv:1: unknown header"):
        read_request_file(other)
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps({"timestamp": t, "input_tokens": 10, "output_tokens": 2}) for t in (5.0, 3.0, 4.5)
        )
    )
    trace = read_request_file(jsonl)
    assert trace.arrival_s.tolist() == [0.0, 1.5, 2.0] and trace.duration_s == 3


@pytest.mark.parametrize(
    "content, line",
    [
        ("timestamp,input_tokens,output_tokens\n1,2,3\n2,x,3\n", 3),
        ("timestamp,input_tokens,output_tokens\n1,2,3\n2,3\n", 3),
        ("timestamp,input_tokens,output_tokens\n1,2,-3\n", 2),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\nnot a date,1,1\n", 3),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, content: str, line: int) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=rf"bad\.csv:{line}:"):
        read_trace(path)


def test_servegen_is_seeded_and_keeps_the_rate(traces_dir: Path) -> None:
    path = traces_dir / "servegen_m-large_per_10min.csv"
    a, b, c = read_servegen(path, seed=1), read_servegen(path, seed=1), read_servegen(path, seed=2)
    assert np.array_equal(a.count, b.count) and not np.array_equal(a.count, c.count)
    assert a.duration_s == 14 * 86400 and not a.per_request
    rates = np.loadtxt(path, delimiter=",", skiprows=1, usecols=2)
    assert abs(a.requests / a.duration_s / rates.mean() - 1) < 0.01  # 195.8 req/s on average


def test_synthetic_generators() -> None:
    p = poisson_trace(5.0, 2000, seed=3)
    assert abs(p.requests / 2000 - 5) < 0.3 and p.requests == poisson_trace(5.0, 2000, seed=3).requests
    d = diurnal_trace(2.0, days=1, peak_to_mean=2.0, seed=1)
    prof = d.hourly_profile()
    assert max(prof) == pytest.approx(4.0, rel=0.1) and prof.index(max(prof)) in (13, 14)
    s = spike_trace(1.0, 50.0, 600, spike_every_s=300, spike_len_s=10, seed=0)
    assert s.arrivals_per_second()[:10].mean() > 30 > s.arrivals_per_second()[20:290].mean()


def test_forecasters() -> None:
    day = np.array([1.0 + h for h in range(24)])
    flat = np.tile(day, 5)
    assert np.allclose(seasonal_naive(flat), day)
    trending = np.concatenate([day + 5 * d for d in range(6)])
    assert (
        np.abs(holt_winters(trending) - (day + 30)).mean()
        < np.abs(seasonal_naive(trending) - (day + 30)).mean()
    )
    backtest = choose_forecaster(trending)
    assert backtest.chosen == "holt-winters" and set(backtest.errors) == {"seasonal-naive", "holt-winters"}
    with pytest.raises(ValueError, match="3 days"):
        choose_forecaster(day)


def test_profile_from_servegen_is_backtested(traces_dir: Path) -> None:
    profile = forecast_profile(read_servegen(traces_dir / "servegen_m-large_per_10min.csv"))
    assert profile.method in ("seasonal-naive", "holt-winters") and profile.backtest is not None
    assert len(profile.rates_by_hour) == 24 and 50 < np.mean(profile.rates_by_hour) < 400
