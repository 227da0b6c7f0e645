"""sha256 verification of checkpoint files, run beside the loader so it costs little extra time.

Expected digests come from a ``SHA256SUMS`` file in the model directory (``sha256sum`` format, written
by :func:`preload.sources.resolve_source` for S3/COS downloads) or, for a Hugging Face cache snapshot,
from the blob a shard links to (the hub stores LFS files under their sha256).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import threading
from pathlib import Path

from core.errors import PreloadError
from preload.confine import confined
from preload.plan import ShardFile

SUMS_FILE = "SHA256SUMS"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HASH_BLOCK = 8 * 1024 * 1024


def read_sums(model_dir: Path) -> dict[str, str]:
    """File name -> hex sha256 from ``model_dir/SHA256SUMS`` (empty when absent)."""
    sums_path = model_dir / SUMS_FILE
    if not sums_path.exists():
        return {}
    try:
        text = confined(model_dir, sums_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PreloadError(f"cannot be read as text: {exc}", file=sums_path) from None
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name.strip().lstrip("*")
        if not _HEX64.match(digest.lower()) or not name:
            raise PreloadError(f"line {number} is not '<sha256>  <file>'", file=sums_path)
        sums[name] = digest.lower()
    return sums


def expected_digest(shard: ShardFile, sums: dict[str, str]) -> str:
    """The sha256 the shard must have; :class:`PreloadError` when none is known."""
    if shard.path.name in sums:
        return sums[shard.path.name]
    if shard.path.is_symlink():
        blob = Path(os.readlink(shard.path)).name
        if _HEX64.match(blob):
            return blob
    raise PreloadError(
        f"no sha256 known for this file: add it to {SUMS_FILE} in the model directory or load without verify",
        file=shard.path,
    )


class FileHasher:
    """Hashes one file from a read-only mapping in a background thread; :meth:`check` joins and compares."""

    def __init__(self, shard: ShardFile, expected: str) -> None:
        self.shard = shard
        self.expected = expected
        self._actual: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"sha256-{shard.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            digest = hashlib.sha256()
            with open(self.shard.open_path, "rb") as fh:
                if self.shard.size:
                    with (
                        mmap.mmap(fh.fileno(), self.shard.size, access=mmap.ACCESS_READ) as mm,
                        memoryview(mm) as view,
                    ):
                        for offset in range(0, self.shard.size, _HASH_BLOCK):
                            digest.update(view[offset : offset + _HASH_BLOCK])
            self._actual = digest.hexdigest()
        except (OSError, ValueError) as exc:
            self._error = exc

    def check(self) -> None:
        """Wait for the hash; :class:`PreloadError` when it differs from the expected digest."""
        self._thread.join()
        if self._error is not None:
            raise PreloadError(f"could not hash the file: {self._error}", file=self.shard.path)
        if self._actual != self.expected:
            raise PreloadError(
                f"sha256 is {self._actual}, expected {self.expected}", file=self.shard.path, offset=0
            )


class StreamHasher:
    """sha256 of a buffer that fills out of order: a background thread hashes the filled prefix.

    Workers call :meth:`filled` for each byte range they completed; the thread hashes ranges as soon
    as they extend the contiguous prefix, so the digest is ready moments after the last byte lands.
    ``name`` is how errors name the object (a URL).
    """

    def __init__(self, name: str, view: memoryview, expected: str) -> None:
        self.name = name
        self.expected = expected
        self._view = view
        self._size = len(view)
        self._ready: dict[int, int] = {}
        self._hashed = 0
        self._aborted = False
        self._cond = threading.Condition()
        self._digest = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="sha256-stream", daemon=True)
        self._thread.start()

    def filled(self, start: int, end: int) -> None:
        """Bytes ``start .. end`` (exclusive) of the buffer hold their final value."""
        with self._cond:
            self._ready[start] = end
            self._cond.notify()

    def abort(self) -> None:
        """Stop hashing (the load failed); :meth:`check` must not be called afterwards."""
        with self._cond:
            self._aborted = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._aborted and self._hashed < self._size and self._hashed not in self._ready:
                    self._cond.wait()
                if self._aborted or self._hashed >= self._size:
                    return
                start = self._hashed
                end = self._ready.pop(start)
            self._digest.update(self._view[start:end])  # GIL released by hashlib for large buffers
            with self._cond:
                self._hashed = end
                self._cond.notify_all()

    def check(self) -> None:
        """Wait for the whole buffer to be hashed; :class:`PreloadError` when the digest differs."""
        with self._cond:
            while self._hashed < self._size and not self._aborted:
                self._cond.wait()
        self._thread.join()
        actual = self._digest.hexdigest()
        if actual != self.expected:
            raise PreloadError(f"sha256 is {actual}, expected {self.expected}", file=self.name, offset=0)
