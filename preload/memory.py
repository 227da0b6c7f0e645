"""Low-level memory helpers: ``madvise`` on buffers, reading a file range fully with ``preadv``, dtypes."""

from __future__ import annotations

import ctypes
import mmap
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PAGE_BYTES = mmap.PAGESIZE
MADV_HUGEPAGE = 14
MADV_POPULATE_READ = 22
"""Linux >= 5.14: fault in (map) every page of a range, reading file pages from disk as needed."""
MADV_POPULATE_WRITE = 23
"""Linux >= 5.14: fault in every page of a range writable (allocates and zeroes anonymous memory)."""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int


def buffer_address(buffer: mmap.mmap) -> int:
    """Address of the first byte of a writable mapping."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


def madvise(address: int, length: int, advice: int) -> None:
    """``madvise(2)`` on ``[address, address + length)``, widened to whole pages; raises OSError."""
    aligned = address - address % PAGE_BYTES
    if _libc.madvise(aligned, length + (address - aligned), advice) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def preadv_fully(fd: int, views: list[memoryview], offset: int) -> int:
    """Fill ``views`` from ``fd`` at ``offset`` with ``os.preadv`` (GIL released); bytes read (short at EOF)."""
    pending = [v.cast("B") if v.format != "B" else v for v in views if v.nbytes]
    total = 0
    while pending:
        count = os.preadv(fd, pending, offset)
        if count == 0:
            break
        total += count
        offset += count
        while pending and count >= pending[0].nbytes:
            count -= pending[0].nbytes
            pending.pop(0)
        if pending and count:
            pending[0] = pending[0][count:]
    return total


_TORCH_DTYPE_NAMES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
    "I16": "int16",
    "U16": "uint16",
    "F16": "float16",
    "BF16": "bfloat16",
    "I32": "int32",
    "U32": "uint32",
    "F32": "float32",
    "I64": "int64",
    "U64": "uint64",
    "F64": "float64",
}


def torch_dtype(code: str) -> torch.dtype:
    """The torch dtype of a safetensors dtype code (``"BF16"`` -> ``torch.bfloat16``)."""
    import torch

    return getattr(torch, _TORCH_DTYPE_NAMES[code])


def byte_view(tensor: torch.Tensor) -> torch.Tensor:
    """A flat ``uint8`` view of a contiguous tensor's memory."""
    import torch

    return tensor.reshape(-1).view(torch.uint8)
