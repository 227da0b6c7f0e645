"""The CUDA path: ``os.preadv`` into pinned staging buffers, async host-to-device copies overlapped with reads.

Each worker owns a ring of staging buffers. A chunk is read into the next buffer of the ring, its
pieces are queued as non-blocking copies on the worker's own stream, and a fence is recorded; before a
buffer is read into again, the worker waits for that buffer's fence. So the disk and the copy engine
both stay busy, and no buffer is overwritten while a copy from it may still be running.

The device side goes through a small :class:`Transfer` interface (``CudaTransfer`` here), so the
scheduling can be exercised on a CPU-only machine with a transfer that defers its copies.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.errors import PreloadError
from preload.chunks import DEFAULT_CHUNK_BYTES, Chunk
from preload.memory import byte_view, preadv_fully, torch_dtype
from preload.plan import PreloadPlan, TensorEntry
from preload.shard_files import open_checked, truncated

if TYPE_CHECKING:
    import torch

BUFFERS_PER_WORKER = 2
"""Staging buffers each worker rotates through: one being read into while the other is copied out."""


class Transfer(Protocol):
    """Device memory and asynchronous host-to-device copies."""

    def init_device(self) -> None:
        """Initialise the device (CUDA context); part of the ``runtime`` stage."""
        ...

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """Uninitialised destination memory on the device."""
        ...

    def staging(self, nbytes: int) -> torch.Tensor:
        """A host ``uint8`` buffer that copies can read asynchronously (pinned memory for CUDA)."""
        ...

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        """Queue ``dst.copy_(src)`` on the calling thread's stream; may return before it runs."""
        ...

    def fence(self) -> object:
        """A marker after every copy the calling thread has queued so far."""
        ...

    def wait(self, fence: object) -> None:
        """Block until every copy before ``fence`` has finished."""
        ...

    def synchronize(self) -> None:
        """Block until every queued copy of every thread has finished."""
        ...


class CudaTransfer:
    """:class:`Transfer` on a CUDA device: pinned staging, one copy stream per worker thread, events."""

    def __init__(self, device: str) -> None:
        self.device_name = device
        self._local = threading.local()

    def init_device(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise PreloadError(
                f"{self.device_name}: CUDA is not available (torch {torch.__version__})",
                field="device",
                value=self.device_name,
            )
        self.device = torch.device(self.device_name)
        torch.cuda.set_device(self.device)
        torch.cuda.init()

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        import torch

        return torch.empty(shape, dtype=dtype, device=self.device)

    def staging(self, nbytes: int) -> torch.Tensor:
        import torch

        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)

    def _stream(self) -> torch.cuda.Stream:
        import torch

        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = torch.cuda.Stream(device=self.device)
        return stream

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        import torch

        with torch.cuda.stream(self._stream()):
            dst.copy_(src, non_blocking=True)

    def fence(self) -> object:
        import torch

        event = torch.cuda.Event()
        event.record(self._stream())
        return event

    def wait(self, fence: object) -> None:
        fence.synchronize()  # type: ignore[attr-defined]

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)


@dataclass
class _Slot:
    buffer: torch.Tensor
    fence: object | None = None


class StagedBackend:
    """Loads through staging buffers with any :class:`Transfer` (see the module docstring)."""

    def __init__(
        self, plan: PreloadPlan, transfer: Transfer, *, workers: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> None:
        self.plan = plan
        self.transfer = transfer
        self.runtime_bytes = plan.total_bytes
        self.lane_per_file = False
        self._workers = workers
        self._chunk_bytes = chunk_bytes
        self._fds: dict[Path, int] = {}
        self._dest: dict[str, torch.Tensor] = {}
        self._dest_bytes: dict[str, torch.Tensor] = {}
        self._rings: queue.SimpleQueue[list[_Slot]] = queue.SimpleQueue()
        self._local = threading.local()

    def prepare(self, pool: ThreadPoolExecutor) -> None:
        for shard in self.plan.files:
            self._fds[shard.path] = open_checked(shard)
        for entry in self.plan.tensors:
            tensor = self.transfer.empty(entry.shape, torch_dtype(entry.dtype))
            self._dest[entry.name] = tensor
            self._dest_bytes[entry.name] = byte_view(tensor)
        staging_bytes = min(self._chunk_bytes, max(self.plan.total_bytes, 1))
        for _ in range(self._workers):
            self._rings.put([_Slot(self.transfer.staging(staging_bytes)) for _ in range(BUFFERS_PER_WORKER)])

    def _next_slot(self) -> _Slot:
        ring = getattr(self._local, "ring", None)
        if ring is None:
            ring = self._local.ring = self._rings.get_nowait()
            self._local.turn = 0
        slot = ring[self._local.turn % len(ring)]
        self._local.turn += 1
        return slot

    def read_chunk(self, chunk: Chunk) -> int:
        slot = self._next_slot()
        if slot.fence is not None:
            self.transfer.wait(slot.fence)
            slot.fence = None
        staging = slot.buffer[: chunk.nbytes]
        got = preadv_fully(self._fds[chunk.file.path], [memoryview(staging.numpy())], chunk.start)
        if got != chunk.nbytes:
            raise truncated(chunk, got, os.fstat(self._fds[chunk.file.path]).st_size)
        position = 0
        for piece in chunk.pieces:
            dst = self._dest_bytes[piece.tensor.name][piece.tensor_start : piece.tensor_start + piece.length]
            self.transfer.copy(dst, staging[position : position + piece.length])
            position += piece.length
        slot.fence = self.transfer.fence()
        return got

    def finish_stage(self) -> None:
        self.transfer.synchronize()

    def tensor(self, entry: TensorEntry) -> torch.Tensor:
        return self._dest[entry.name]

    def close(self) -> None:
        """Close the file descriptors."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
