"""``llmfn preload SOURCE``: run the staged preload with a progress bar and a per-stage summary.

``--json`` prints one JSON object instead (the same shape as the ``timeline`` of ``/readyz``, so a
planner can take either as cold-start input)::

    {"source": "...", "device": "cpu", "method": "mmap", "bytes": 8044936192, "verified": false,
     "stages": [{"name": "fetch", "seconds": 0.41},
                {"name": "runtime", "seconds": 0.01, "bytes": 0},
                {"name": "embedding", "seconds": 0.35, "bytes": 777912320}, ...],
     "total_s": 2.71}

``seconds`` per stage (stages run one after another here, so they add up to ``total_s``), ``bytes``
moved by each loading stage. ``fetch`` is resolving the source: a Hub download, or for ``s3://`` /
``cos://`` listing the objects and reading their headers (the weights then stream into memory).
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from core.errors import InputError


def register(app: typer.Typer) -> None:
    """Attach the ``preload`` command to ``app``."""

    @app.command("preload")
    def preload_command(
        source: str = typer.Argument(
            ..., help="Local directory, hf://org/name or org/name, s3://bucket/prefix, cos://bucket/prefix."
        ),
        revision: str = typer.Option(
            None, "--revision", help="Hub branch, tag or commit (pinned to its commit)."
        ),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N]."),
        workers: int = typer.Option(4, "--workers", min=1, help="Parallel reader threads."),
        verify: bool = typer.Option(False, "--verify", help="Check each file's sha256 while loading."),
        prefetch_only: bool = typer.Option(
            False,
            "--prefetch-only",
            help="Only bring the files into the page cache (for engines that read them).",
        ),
        cache_dir: str = typer.Option(
            None,
            "--cache-dir",
            help="Where remote checkpoints are kept (default $LLMFN_CACHE); s3:// and cos:// shards are "
            "kept there only when given.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (stages, total_s)."),
    ) -> None:
        """Load a checkpoint stage by stage (runtime, embedding, blocks, final) at the storage limit."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )
        from rich.table import Table

        import preload

        console = Console(stderr=as_json)
        started = time.perf_counter()
        remote = None
        if preload.is_object_store(source) and not prefetch_only:
            from pathlib import Path

            from preload.stream import open_remote

            if revision is not None:
                raise InputError(f"--revision applies to Hugging Face Hub sources only, not to {source}")
            remote = open_remote(
                source, cache_root=Path(cache_dir) if cache_dir else None, workers=max(workers, 8)
            )
            plan, model_dir = remote.plan, remote.local_dir
        else:
            model_dir = preload.resolve_source(source, revision, cache_dir, workers=max(workers, 8))
            plan = preload.plan_checkpoint(model_dir)
        fetch_s = time.perf_counter() - started
        if not as_json:
            console.print(
                f"[bold]{source if remote else model_dir}[/bold]: {len(plan.files)} file(s), "
                f"{len(plan.tensors)} tensors, {plan.total_bytes:,} B ({plan.total_bytes / 1e9:.2f} GB)"
            )
        progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            DownloadColumn(binary_units=False),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        tasks: dict[str, int] = {}

        def on_event(event: preload.StageEvent) -> None:
            if event.stage not in tasks:
                tasks[event.stage] = progress.add_task(event.stage, total=max(event.total_bytes, 1))
            done = event.bytes if event.total_bytes else (1 if event.kind == "end" else 0)
            progress.update(tasks[event.stage], completed=done)

        method, verified = "prefetch", False
        with progress:
            if prefetch_only:
                timings = preload.prefetch_to_page_cache(model_dir, workers=workers, on_event=on_event)
            elif remote is not None:
                if device != "cpu":
                    raise InputError(f"--device {device}: s3:// and cos:// sources stream into CPU memory")
                loaded = preload.stream_checkpoint(
                    remote,
                    workers=max(workers, 8),
                    verify=True if verify else None,
                    on_event=on_event,
                    cache=cache_dir is not None,
                )
                timings, method, verified = loaded.timings, loaded.method, loaded.verified
                if loaded.cache_writer is not None:
                    loaded.cache_writer.join()
            else:
                loaded = preload.load_checkpoint(
                    model_dir, device=device, workers=workers, verify=verify, on_event=on_event
                )
                timings, method, verified = loaded.timings, loaded.method, loaded.verified
        if as_json:
            stages: list[dict[str, Any]] = [{"name": "fetch", "seconds": round(fetch_s, 4)}]
            stages += [{"name": t.stage, "seconds": round(t.seconds, 4), "bytes": t.bytes} for t in timings]
            report = {
                "source": source,
                "device": device,
                "method": method,
                "bytes": plan.total_bytes,
                "verified": verified,
                "stages": stages,
                "total_s": round(fetch_s + sum(t.seconds for t in timings), 4),
            }
            print(json.dumps(report))
            return
        table = Table(title="prefetch into the page cache" if prefetch_only else f"preload on {device}")
        for column in ("stage", "bytes", "seconds", "GB/s", "ready at s"):
            table.add_column(column, justify="left" if column == "stage" else "right")
        elapsed = 0.0
        for timing in timings:
            elapsed += timing.seconds
            gbps = f"{timing.gb_per_s:.2f}" if timing.bytes else "-"
            table.add_row(timing.stage, f"{timing.bytes:,}", f"{timing.seconds:.3f}", gbps, f"{elapsed:.3f}")
        moved = sum(t.bytes for t in timings if t.stage != "runtime")
        table.add_section()
        table.add_row(
            "all", f"{moved:,}", f"{elapsed:.3f}", f"{moved / elapsed / 1e9:.2f}" if elapsed else "-", ""
        )
        console.print(table)
        if verified:
            console.print("[green]sha256 verified[/green] for every file")
