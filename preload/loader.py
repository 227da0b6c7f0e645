"""The staged parallel loader: runs a :class:`~preload.plan.PreloadPlan` with N worker threads.

Stages run in order (``runtime``, ``embedding``, ``blocks``, ``final``); a stage is cut into 16 MiB
chunks in reading order (layers in order, file-offset order within a layer). Three ways to bring bytes
in, all with the GIL released during I/O:

- ``mmap`` (CPU default, measured fastest here warm and cold): a private writable mapping of each file,
  every page faulted in with ``madvise(MADV_POPULATE_READ)``. Zero-copy: tensors share the page cache
  until written (copy-on-write), every byte is resident when the stage ends. One worker walks each
  file of the stage in order and files run in parallel: the kernel's readahead does the I/O, and
  threads interleaving inside one file measured 10-25 % slower cold here (its readahead is per file).
- ``read`` (CPU): tensors own anonymous memory, pre-faulted (huge pages where allowed) in the ``runtime``
  stage, filled with ``os.preadv`` straight from the file; workers share the chunks of a stage.
- ``staged`` (CUDA): ``os.preadv`` into pinned staging buffers, async copies to the device overlapped
  with the next reads (see :mod:`preload.staged`).

A stage's ``end`` event is sent only when all its bytes are in place; any failure raises
:class:`~core.errors.PreloadError` and nothing is returned, so nothing half-loaded is ever ready.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from core.errors import PreloadError
from preload.chunks import DEFAULT_CHUNK_BYTES, Chunk, lanes, stage_chunks
from preload.events import STAGE_FINAL, STAGE_RUNTIME, STAGES, EventCallback, StageEvent
from preload.integrity import FileHasher, expected_digest, read_sums
from preload.memory import (
    MADV_HUGEPAGE,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    buffer_address,
    madvise,
    preadv_fully,
    torch_dtype,
)
from preload.plan import PreloadPlan, TensorEntry, plan_checkpoint
from preload.shard_files import open_checked, truncated

if TYPE_CHECKING:
    import torch

LoadMethod = Literal["auto", "mmap", "read", "staged"]
TENSOR_ALIGN_BYTES = 64
"""Alignment of each tensor in the ``read`` method's memory (one cache line)."""


@dataclass(frozen=True)
class StageTiming:
    """What one stage moved (bytes) and how long it took (seconds)."""

    stage: str
    bytes: int
    seconds: float

    @property
    def gb_per_s(self) -> float:
        """Throughput in GB/s (10^9 B/s); 0.0 for an instant stage."""
        return self.bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0


@dataclass
class LoadedCheckpoint:
    """Every tensor of a checkpoint, fully resident on ``device``, with the timings of each stage."""

    plan: PreloadPlan
    tensors: dict[str, torch.Tensor]
    timings: list[StageTiming]
    device: str
    method: str
    verified: bool
    cache_writer: threading.Thread | None = None
    """Writes a streamed checkpoint to its local cache in the background (``stream_checkpoint(cache=True)``)."""

    def seconds_until(self, stage: str) -> float:
        """Seconds from the start of the load to the end of ``stage`` (stages run one after another)."""
        names = [t.stage for t in self.timings]
        if stage not in names:
            raise KeyError(f"stage {stage!r} did not run; ran: {', '.join(names)}")
        return sum(t.seconds for t in self.timings[: names.index(stage) + 1])


class StageReporter:
    """Times stages and sends their start / progress / end events to a callback."""

    def __init__(self, on_event: EventCallback | None) -> None:
        self._on_event = on_event
        self.timings: list[StageTiming] = []

    def _send(self, stage: str, kind: str, done: int, total: int, seconds: float) -> None:
        if self._on_event is not None:
            self._on_event(StageEvent(stage, kind, done, total, seconds, STAGES.index(stage), len(STAGES)))  # type: ignore[arg-type]

    @contextmanager
    def stage(self, name: str, total_bytes: int) -> Iterator[Callable[[int], None]]:
        """Time a stage; yields ``progress(bytes_done)``. The ``end`` event is sent only on success."""
        started = time.perf_counter()
        self._send(name, "start", 0, total_bytes, 0.0)
        yield lambda done: self._send(name, "progress", done, total_bytes, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        self.timings.append(StageTiming(name, total_bytes, seconds))
        self._send(name, "end", total_bytes, total_bytes, seconds)


def run_lanes(
    pool: ThreadPoolExecutor,
    chunk_lanes: list[list[Chunk]],
    process: Callable[[Chunk], int],
    progress: Callable[[int], None],
) -> None:
    """Read every lane with the pool, each lane's chunks in order; report bytes done after every chunk.

    Progress is reported from the calling thread. The first error (of a worker or of ``progress``)
    stops every lane at its next chunk and is raised once the workers are idle.
    """
    finished: queue.SimpleQueue[int | BaseException] = queue.SimpleQueue()
    stop = threading.Event()

    def read_lane(lane: list[Chunk]) -> None:
        try:
            for chunk in lane:
                if stop.is_set():
                    return
                finished.put(process(chunk))
        except BaseException as exc:
            finished.put(exc)

    futures = [pool.submit(read_lane, lane) for lane in chunk_lanes]
    done = 0
    try:
        for _ in range(sum(len(lane) for lane in chunk_lanes)):
            item = finished.get()
            if isinstance(item, BaseException):
                raise item
            done += item
            progress(done)
    except BaseException:
        stop.set()
        for future in futures:
            future.cancel()
        wait(futures)
        raise


class LoadBackend(Protocol):
    """How one load method prepares memory, reads a chunk and hands out tensors."""

    runtime_bytes: int
    """Bytes of destination memory the ``runtime`` stage allocates and pre-faults."""
    lane_per_file: bool
    """Read each file as one sequential stream (see :func:`preload.chunks.lanes`)."""

    def prepare(self, pool: ThreadPoolExecutor) -> None:
        """The ``runtime`` stage's work: open, map, allocate and pre-fault ``runtime_bytes``."""
        ...

    def read_chunk(self, chunk: Chunk) -> int:
        """Bring one chunk's bytes into place (called from worker threads); returns its byte count."""
        ...

    def finish_stage(self) -> None:
        """Block until every chunk of the stage just read is in its final place."""
        ...

    def tensor(self, entry: TensorEntry) -> torch.Tensor:
        """The loaded tensor (valid once its stage has finished)."""
        ...

    def close(self) -> None:
        """Release the file descriptors; the memory lives as long as the tensors."""
        ...


def tensor_in_file_image(image: object, entry: TensorEntry) -> torch.Tensor:
    """The tensor ``entry`` as a view of ``image``, a buffer laid out like its whole file (a mapping).

    A tensor whose offset is not a multiple of its element size is copied into owned memory rather
    than handed out as a skewed view. The view keeps ``image`` alive.
    """
    import torch

    dtype = torch_dtype(entry.dtype)
    if entry.numel == 0:
        return torch.empty(entry.shape, dtype=dtype)
    if entry.start % dtype.itemsize:
        raw = torch.frombuffer(image, dtype=torch.uint8, count=entry.nbytes, offset=entry.start)
        return raw.clone().view(dtype).view(entry.shape)
    return torch.frombuffer(image, dtype=dtype, count=entry.numel, offset=entry.start).view(entry.shape)


class MappedBackend:
    """``mmap``: private writable mappings, every page faulted in by ``MADV_POPULATE_READ``.

    The file sizes are checked after every chunk and at the end of every stage: a file truncated while
    it loads is refused (beyond-EOF bytes of a last page would otherwise read as zeros). As with any
    mapping, truncating a file later makes its untouched pages fault; use the ``read`` method where
    files may change under a running process.
    """

    def __init__(self, plan: PreloadPlan) -> None:
        self.plan = plan
        self._maps: dict[Path, tuple[mmap.mmap, int]] = {}
        self._fds: dict[Path, int] = {}
        self.runtime_bytes = 0
        self.lane_per_file = True

    def prepare(self, pool: ThreadPoolExecutor) -> None:
        for shard in self.plan.files:
            fd = self._fds[shard.path] = open_checked(shard)
            mapping = mmap.mmap(fd, shard.size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            self._maps[shard.path] = (mapping, buffer_address(mapping))

    def _check_size(self, chunk: Chunk) -> None:
        size = os.fstat(self._fds[chunk.file.path]).st_size
        if size < chunk.end:
            raise truncated(chunk, max(0, size - chunk.start), size)

    def read_chunk(self, chunk: Chunk) -> int:
        _, address = self._maps[chunk.file.path]
        try:
            madvise(address + chunk.start, chunk.nbytes, MADV_POPULATE_READ)
        except OSError as exc:
            self._check_size(chunk)
            raise PreloadError(
                f"could not fault in the mapping: {exc}", file=chunk.file.path, offset=chunk.start
            ) from exc
        self._check_size(chunk)
        return chunk.nbytes

    def finish_stage(self) -> None:
        for shard in self.plan.files:
            size = os.fstat(self._fds[shard.path]).st_size
            if size != shard.size:
                raise PreloadError(
                    f"file changed size while loading: {shard.size} B -> {size} B",
                    file=shard.path,
                    offset=size,
                )

    def tensor(self, entry: TensorEntry) -> torch.Tensor:
        return tensor_in_file_image(self._maps[entry.file][0], entry)

    def close(self) -> None:
        """Close the file descriptors (the mappings live as long as their tensors)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class ReadBackend:
    """``read``: one pre-faulted anonymous arena; tensors at aligned offsets, filled by ``os.preadv``."""

    def __init__(self, plan: PreloadPlan) -> None:
        self.plan = plan
        self._fds: dict[Path, int] = {}
        self._offsets: dict[str, int] = {}
        position = 0
        for entry in plan.tensors:
            self._offsets[entry.name] = position
            position += -(-entry.nbytes // TENSOR_ALIGN_BYTES) * TENSOR_ALIGN_BYTES
        self._arena_bytes = max(position, 1)
        self.runtime_bytes = self._arena_bytes
        self.lane_per_file = False
        self._arena: mmap.mmap | None = None
        self._view: memoryview | None = None

    def prepare(self, pool: ThreadPoolExecutor) -> None:
        for shard in self.plan.files:
            self._fds[shard.path] = open_checked(shard)
        self._arena = mmap.mmap(-1, self._arena_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        address = buffer_address(self._arena)
        madvise(address, self._arena_bytes, MADV_HUGEPAGE)
        step = 64 * 1024 * 1024
        spans = [(start, min(step, self._arena_bytes - start)) for start in range(0, self._arena_bytes, step)]
        list(pool.map(lambda span: madvise(address + span[0], span[1], MADV_POPULATE_WRITE), spans))
        self._view = memoryview(self._arena)

    def read_chunk(self, chunk: Chunk) -> int:
        assert self._view is not None
        views = [
            self._view[self._offsets[p.tensor.name] + p.tensor_start :][: p.length] for p in chunk.pieces
        ]
        got = preadv_fully(self._fds[chunk.file.path], views, chunk.start)
        if got != chunk.nbytes:
            raise truncated(chunk, got, os.fstat(self._fds[chunk.file.path]).st_size)
        return got

    def finish_stage(self) -> None:
        return None

    def tensor(self, entry: TensorEntry) -> torch.Tensor:
        import torch

        dtype = torch_dtype(entry.dtype)
        if entry.numel == 0:
            return torch.empty(entry.shape, dtype=dtype)
        return torch.frombuffer(
            self._arena, dtype=dtype, count=entry.numel, offset=self._offsets[entry.name]
        ).view(entry.shape)

    def close(self) -> None:
        """Close the file descriptors (the arena lives as long as its tensors)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def run_plan(
    plan: PreloadPlan,
    backend: LoadBackend,
    *,
    workers: int,
    verify: bool,
    on_event: EventCallback | None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    runtime_setup: Callable[[], None] | None = None,
    make_tensors: bool = True,
) -> tuple[dict[str, torch.Tensor], list[StageTiming]]:
    """Run every stage of ``plan`` through ``backend``; the tensors by name and the stage timings.

    ``runtime_setup`` runs first inside the ``runtime`` stage (device initialisation); with
    ``make_tensors=False`` the bytes are brought in but no tensors are made (page-cache prefetch).
    torch is imported only once every byte is in place (CPU backends read without it), so a caller
    can import its engine in another thread while the weights arrive; the tensors are made last.
    """
    if workers < 1:
        raise PreloadError(f"must be at least 1, got {workers}", field="workers", value=workers)
    reporter = StageReporter(on_event)
    tensors: dict[str, torch.Tensor] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preload") as pool:
        with reporter.stage(STAGE_RUNTIME, backend.runtime_bytes):
            if runtime_setup is not None:
                runtime_setup()
            sums = read_sums(plan.model_dir) if verify else {}
            expected = {shard.path: expected_digest(shard, sums) for shard in plan.files} if verify else {}
            backend.prepare(pool)
        hashers = [FileHasher(shard, expected[shard.path]) for shard in plan.files] if verify else []

        def last_stage_done() -> None:  # still inside ``final``: its end means every tensor is usable
            nonlocal tensors
            for hasher in hashers:
                hasher.check()
            if make_tensors:
                tensors = {entry.name: backend.tensor(entry) for entry in plan.tensors}

        if getattr(backend, "pipelined", False):
            run_stages_pipelined(pool, plan, backend, reporter, chunk_bytes, last_stage_done)
            return tensors, reporter.timings
        for stage in plan.stages:
            with reporter.stage(stage.name, stage.nbytes) as progress:
                chunks = stage_chunks(stage, plan.files, chunk_bytes)
                run_lanes(pool, lanes(chunks, per_file=backend.lane_per_file), backend.read_chunk, progress)
                backend.finish_stage()
                if stage.name == STAGE_FINAL:
                    last_stage_done()
    return tensors, reporter.timings


def run_stages_pipelined(
    pool: ThreadPoolExecutor,
    plan: PreloadPlan,
    backend: LoadBackend,
    reporter: StageReporter,
    chunk_bytes: int,
    last_stage_done: Callable[[], None],
) -> None:
    """Every chunk of every stage queued at once, in stage order, with no barrier between stages.

    For sources with a long time per request (ranged GETs): the workers never drain at a stage's end.
    Chunks still start in stage order (the pool is FIFO) and a stage's ``end`` is still sent only once
    all its bytes are in place and every earlier stage has ended; its seconds count from that earlier
    end. The first error stops the remaining chunks and is raised; no further ``end`` is sent.
    """
    stages = plan.stages
    chunks = [stage_chunks(stage, plan.files, chunk_bytes) for stage in stages]
    results: queue.SimpleQueue[tuple[int, int] | BaseException] = queue.SimpleQueue()
    stop = threading.Event()

    def read(index: int, chunk: Chunk) -> None:
        if stop.is_set():
            return
        try:
            results.put((index, backend.read_chunk(chunk)))
        except BaseException as exc:
            results.put(exc)

    futures = [pool.submit(read, index, chunk) for index, queued in enumerate(chunks) for chunk in queued]
    remaining = [len(queued) for queued in chunks]
    moved = [0] * len(stages)
    try:
        for index, stage in enumerate(stages):
            with reporter.stage(stage.name, stage.nbytes) as progress:
                if moved[index]:
                    progress(moved[index])
                while remaining[index]:
                    item = results.get()
                    if isinstance(item, BaseException):
                        raise item
                    done, nbytes = item
                    remaining[done] -= 1
                    moved[done] += nbytes
                    if done == index:
                        progress(moved[index])
                backend.finish_stage()
                if index == len(stages) - 1:
                    last_stage_done()
    except BaseException:
        stop.set()
        for future in futures:
            future.cancel()
        wait(futures)
        raise


def load_checkpoint(
    model_dir: str | os.PathLike[str],
    *,
    device: str = "cpu",
    workers: int = 4,
    verify: bool = False,
    on_event: EventCallback | None = None,
    method: LoadMethod = "auto",
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> LoadedCheckpoint:
    """Load every tensor of the checkpoint in ``model_dir`` onto ``device``, stage by stage.

    ``method="auto"`` is ``mmap`` on CPU and ``staged`` on CUDA. ``verify`` checks each file's sha256
    (from ``SHA256SUMS`` or the hub cache) while loading. Dtypes are kept as stored (bf16 included).
    """
    plan = plan_checkpoint(model_dir)
    is_cpu = device == "cpu"
    if not is_cpu and not device.startswith("cuda"):
        raise PreloadError(
            f"must be 'cpu' or 'cuda[:N]', got {device!r}",
            field="device",
            value=device,
            allowed="cpu, cuda[:N]",
        )
    chosen = ("mmap" if is_cpu else "staged") if method == "auto" else method
    if chosen not in ("mmap", "read", "staged"):
        raise PreloadError(f"method must be auto, mmap, read or staged, got {method!r}")
    if chosen in ("mmap", "read") and not is_cpu:
        raise PreloadError(f"method {chosen!r} loads into CPU memory; use 'staged' (or 'auto') for {device}")
    runtime_setup = None
    backend: LoadBackend
    if chosen == "mmap":
        backend = MappedBackend(plan)
    elif chosen == "read":
        backend = ReadBackend(plan)
    else:
        from preload.staged import CudaTransfer, StagedBackend

        transfer = CudaTransfer(device)
        runtime_setup = transfer.init_device
        backend = StagedBackend(plan, transfer, workers=workers, chunk_bytes=chunk_bytes)
    try:
        tensors, timings = run_plan(
            plan,
            backend,
            workers=workers,
            verify=verify,
            on_event=on_event,
            chunk_bytes=chunk_bytes,
            runtime_setup=runtime_setup,
        )
    finally:
        backend.close()
    return LoadedCheckpoint(plan, tensors, timings, device, chosen, verify)


def prefetch_to_page_cache(
    model_dir: str | os.PathLike[str], *, workers: int = 4, on_event: EventCallback | None = None
) -> list[StageTiming]:
    """Bring every checkpoint byte into the page cache in stage order, for engines that read files themselves.

    Same plan, workers and events as :func:`load_checkpoint` (``mmap`` method); the mappings are dropped
    at the end, the pages stay cached. Returns the stage timings.
    """
    plan = plan_checkpoint(model_dir)
    backend = MappedBackend(plan)
    try:
        _, timings = run_plan(
            plan, backend, workers=workers, verify=False, on_event=on_event, make_tensors=False
        )
    finally:
        backend.close()
    return timings
