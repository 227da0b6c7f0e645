"""The ``--plot`` figure: offered load, instances (reserved vs on-demand) and P99 TTFT over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import ScalingError
from scaling.simulate import Report
from scaling.traces import Trace


def _bins(duration_s: int) -> int:
    """Seconds per plotted point: about 300 points over the trace, at least 10 s."""
    return max(10, duration_s // 300)


def _p99_per_bin(values: np.ndarray, weights: np.ndarray, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Weighted P99 of ``values`` in each bin (NaN for empty bins), sorted once for all bins."""
    bins = np.minimum(bins, n_bins - 1)
    order = np.lexsort((values, bins))
    v, w, b = values[order], weights[order], bins[order]
    cum = np.cumsum(w)
    first = np.searchsorted(b, np.arange(n_bins), side="left")
    last = np.searchsorted(b, np.arange(n_bins), side="right")
    before = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)
    total = np.where(last > first, cum[np.maximum(last - 1, 0)] - before, 0.0)
    idx = np.searchsorted(cum, before + 0.99 * total - 1e-9, side="left")
    out = v[np.clip(idx, 0, len(v) - 1)] if len(v) else np.zeros(n_bins)
    return np.where(total > 0, out, np.nan)


def plot_report(
    report: Report, trace: Trace, path: str | Path, policies: Sequence[str] | None = None
) -> Path:
    """Write a PNG with one panel each for load, instances and latency; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [p for p in report.policies if p.record is not None and (not policies or p.name in policies)]
    if not chosen:
        raise ScalingError(
            f": none of {list(policies or [])} was simulated", field="plot_policies", value=policies
        )
    width = _bins(trace.duration_s)
    n_bins = trace.duration_s // width
    hours = np.arange(n_bins) * width / 3600

    def per_bin(series: np.ndarray) -> np.ndarray:
        return series[: n_bins * width].reshape(n_bins, width).mean(axis=1)

    fig, (ax_load, ax_inst, ax_lat) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    ax_load.plot(hours, per_bin(trace.arrivals_per_second()), color="black", lw=1)
    ax_load.set_ylabel("offered load (req/s)")
    ax_load.set_title(f"{report.trace} on {report.provider}: load, instances and P99 TTFT ({width} s bins)")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, p in enumerate(chosen):
        colour = colours[i % len(colours)]
        usage = p.record.usage  # type: ignore[union-attr]
        ax_inst.plot(hours, per_bin(usage.reserved_alive), color=colour, lw=1.5, label=f"{p.name} reserved")
        ax_inst.plot(
            hours, per_bin(usage.on_demand_alive), color=colour, lw=1, ls="--", label=f"{p.name} on-demand"
        )
        rec = p.record
        assert rec is not None
        ax_lat.plot(
            hours,
            _p99_per_bin(rec.ttft_s, rec.weights, rec.second // width, n_bins),
            color=colour,
            lw=1,
            alpha=0.8,
        )
    ax_inst.set_ylabel("instances")
    ax_inst.set_title("solid: reserved, dashed: on-demand (alive)", fontsize=9)
    ax_inst.legend(fontsize=7, ncol=3, loc="upper left")
    ax_lat.axhline(report.slo_p99_s, color="red", ls=":", lw=1, label=f"SLO {report.slo_p99_s:g} s")
    ax_lat.set_ylabel("P99 TTFT (s)")
    ax_lat.set_yscale("log")
    ax_lat.set_xlabel("hours from trace start")
    ax_lat.legend([*[p.name for p in chosen], "SLO"], fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
