"""One ``llmfn load`` measurement: replay a plan against an endpoint, read the runtime's status before,
at the horizon and after, fit the service model and simulate the same requests.

The command (``llmfn.commands.load``) parses options and prints; this module does the work. Against
an endpoint that is not ``llmfn dev`` (no ``/_llmfn/status``) only the client-side measurements are
made. Times are seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from core.errors import LlmfnError
from llmfn.local import loadgen
from llmfn.local.client import Completion, chat, first_model
from llmfn.local.prediction import (
    PROBE_SHAPES,
    Calibration,
    Prediction,
    calibrate,
    mean_cold_start_s,
)
from llmfn.local.prediction import predict as simulate
from llmfn.local.status import RuntimeStatus, fetch_status

UNQUEUED_S = 0.005
"""A request that waited less than this for a worker slot measures the service time alone, seconds."""


class ModelListingFailed(LlmfnError, RuntimeError):
    """``/v1/models`` could not be read, so no model id to send requests to."""

    def __init__(self, base: str, cause: Exception) -> None:
        super().__init__(f"cannot list the models at {base} ({cause!s}); is `llmfn dev` running?")
        self.base = base


@dataclass(frozen=True)
class Measurement:
    """What one load run measured, and what the simulator predicted for it.

    instance_seconds: worker-seconds the runtime accumulated from the start to the horizon (None
    when the target has no ``/_llmfn/status``); sampled_s: the seconds between the two status samples
    that ``instance_seconds`` spans (the horizon plus scheduling delays; None with it);
    worker_cold_starts: workers started during the run; wall_s: the replay's wall-clock time, seconds.
    """

    summary: loadgen.LoadSummary
    outcomes: list[loadgen.Outcome]
    instance_seconds: float | None
    sampled_s: float | None
    worker_cold_starts: int | None
    wall_s: float
    calibration: Calibration | None
    calibrated_on: str
    """Which requests the service model was fitted on (empty when it was not fitted)."""
    prediction: Prediction | None
    final_status: RuntimeStatus | None


def measure(
    base: str,
    plan: list[loadgen.PlannedRequest],
    horizon_s: float,
    headers: dict[str, str],
    model: str | None,
    max_in_flight: int,
    predict: bool,
    progress: Callable[[str], None] = lambda _line: None,
) -> Measurement:
    """Replay ``plan`` against ``base`` (the ``/v1`` URL) and predict it when the target is ``llmfn dev``.

    horizon_s: when the runtime's instance-seconds are sampled a second time, seconds after the start.
    progress: receives a line at each step (the command prints it to stderr).
    Raises ModelListingFailed when ``model`` is None and ``/v1/models`` cannot be read.
    """
    root = base.removesuffix("/v1")
    with httpx.Client(headers=headers) as sync_client:
        sampled_from = time.perf_counter()
        status = fetch_status(sync_client, root)
        sampled_from = (sampled_from + time.perf_counter()) / 2
        try:
            model_id = model or asyncio.run(_first_model(base, headers))
        except (httpx.TransportError, RuntimeError) as exc:
            raise ModelListingFailed(base, exc) from None
        warm_reserved = (
            sum(w.kind == "reserved" and w.state == "ready" for w in status.pool.workers) if status else 0
        )
        progress(f"replaying {len(plan)} requests over {horizon_s:.0f} s against {base}...")
        before = status.pool.instance_seconds if status else None
        last_worker_id = max((w.id for w in status.pool.known_workers()), default=0) if status else 0

        sampled_to = sampled_from

        async def run() -> tuple[list[loadgen.Outcome], float | None]:
            async def at_horizon() -> float | None:
                nonlocal sampled_to
                await asyncio.sleep(horizon_s)
                asked = time.perf_counter()
                after = await asyncio.to_thread(fetch_status, sync_client, root)
                sampled_to = (asked + time.perf_counter()) / 2
                return after.pool.instance_seconds if after else None

            sampler = asyncio.create_task(at_horizon())
            outcomes = await loadgen.replay(base, model_id, plan, headers, max_in_flight)
            return outcomes, await sampler

        started = time.perf_counter()
        outcomes, after = asyncio.run(run())
        wall_s = time.perf_counter() - started
        final_status = fetch_status(sync_client, root)
        calibration, calibrated_on = None, ""
        if predict and final_status is not None:
            calibration, calibrated_on = fit_service_model(outcomes, base, model_id, headers, progress)

    prediction = None
    if calibration is not None and final_status is not None:
        answered = [o for o in outcomes if o.completion is not None]
        cold_start_s = mean_cold_start_s(final_status, last_worker_id) or float(
            final_status.policy.config["cold_start_s"]
        )
        prediction = simulate(
            [o.planned.at_s for o in answered],
            [o.completion.prompt_tokens or o.planned.prompt_tokens for o in answered],  # type: ignore[union-attr]
            [o.completion.completion_tokens or o.planned.output_tokens for o in answered],  # type: ignore[union-attr]
            horizon_s,
            warm_reserved,
            final_status,
            calibration,
            cold_start_s,
        )
    return Measurement(
        summary=loadgen.summarize(outcomes),
        outcomes=outcomes,
        instance_seconds=after - before if after is not None and before is not None else None,
        sampled_s=sampled_to - sampled_from if after is not None and before is not None else None,
        worker_cold_starts=(
            final_status.pool.counters.cold_starts - status.pool.counters.cold_starts
            if status and final_status
            else None
        ),
        wall_s=wall_s,
        calibration=calibration,
        calibrated_on=calibrated_on,
        prediction=prediction,
        final_status=final_status,
    )


async def _first_model(base: str, headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        return await first_model(client, base, headers)


def fit_service_model(
    outcomes: list[loadgen.Outcome],
    base: str,
    model_id: str,
    headers: dict[str, str],
    progress: Callable[[str], None] = lambda _line: None,
) -> tuple[Calibration, str]:
    """The service model fitted on the run's requests that waited for nothing (same machine, same
    moment, so the same background load); when too few, on probe requests sent now. Returns it and
    what it was fitted on, in words."""
    unqueued = [
        o.completion
        for o in outcomes
        if o.completion is not None
        and o.completion.status == 200
        and not o.completion.cold_start
        and float(o.completion.headers.get("x-llmfn-queue-seconds", "1")) < UNQUEUED_S
    ]
    try:
        return calibrate(unqueued), f"the {len(unqueued)} requests of this run that waited for no worker"
    except RuntimeError:
        progress("too few unqueued requests to fit the service model: sending probes...")

    async def probe() -> list[Completion]:
        async with httpx.AsyncClient(timeout=300) as client:
            results = []
            for prompt_tokens, output_tokens in ((16, 4), *PROBE_SHAPES):  # the first one warms up
                body = {
                    "model": model_id,
                    "messages": [{"role": "user", "content": loadgen.prompt_of(prompt_tokens)}],
                    "max_tokens": output_tokens,
                    "temperature": 0,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
                results.append(await chat(client, base, body, headers))
            return results[1:]

    return calibrate(asyncio.run(probe())), f"{len(PROBE_SHAPES)} probe requests sent after the run"
