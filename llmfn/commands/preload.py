"""``llmfn preload SOURCE``: run the staged preload with a progress bar and a per-stage summary."""

from __future__ import annotations

import typer


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
            None, "--cache-dir", help="Where remote checkpoints are kept (default $LLMFN_CACHE)."
        ),
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

        console = Console()
        model_dir = preload.resolve_source(source, revision, cache_dir, workers=max(workers, 8))
        plan = preload.plan_checkpoint(model_dir)
        console.print(
            f"[bold]{model_dir}[/bold]: {len(plan.files)} file(s), {len(plan.tensors)} tensors, "
            f"{plan.total_bytes:,} B ({plan.total_bytes / 1e9:.2f} GB)"
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

        with progress:
            if prefetch_only:
                timings = preload.prefetch_to_page_cache(model_dir, workers=workers, on_event=on_event)
            else:
                loaded = preload.load_checkpoint(
                    model_dir, device=device, workers=workers, verify=verify, on_event=on_event
                )
                timings = loaded.timings
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
        if verify and not prefetch_only:
            console.print("[green]sha256 verified[/green] for every file")
