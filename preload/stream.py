"""Stream a checkpoint from S3 / COS straight into memory: no copy of the shards on disk first.

:func:`open_remote` fetches what planning needs (the small metadata files into a local directory,
then the first bytes of every shard up to the end of its header) and plans the checkpoint exactly as a
local one. :func:`stream_checkpoint` then runs that plan with the loader: ranged GETs, in stage order
(the embedding first, then the layers in order, then the rest), shared by ``workers`` threads, each
range written by the socket into the weights' own memory (one anonymous buffer per shard, laid out like
the file, so tensors are views of it), each range retried on its own (:mod:`preload.objectstore`).
The sha256 of every shard is computed while its bytes arrive (:class:`~preload.integrity.StreamHasher`)
and checked before the ``final`` stage ends.

A local cache is optional (``cache=True``): the streamed shards are written to the local directory in
the background after the load, with the ETag manifest :func:`preload.resolve_source` keeps, and a later
:func:`open_remote` whose every shard is cached and unchanged loads them from disk instead.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import PreloadError
from preload.chunks import DEFAULT_CHUNK_BYTES, Chunk
from preload.events import EventCallback
from preload.integrity import StreamHasher
from preload.loader import LoadedCheckpoint, load_checkpoint, run_plan, tensor_in_file_image
from preload.memory import MADV_HUGEPAGE, buffer_address, madvise
from preload.objectstore import ObjectRef, ObjectStore
from preload.plan import (
    PreloadPlan,
    ShardFile,
    TensorEntry,
    header_bytes_needed,
    parse_header,
    plan_from_headers,
    read_weight_map,
)
from preload.sources import default_cache_dir, is_current, local_dir_of, read_manifest, record

if TYPE_CHECKING:
    import torch

HEADER_PROBE_BYTES = 256 * 1024
"""First bytes of each shard fetched to read its header (256 KiB: a 4B model's header is ~40 KiB);
a longer header costs one more ranged GET."""


@dataclass
class RemoteCheckpoint:
    """A planned remote checkpoint: the store, its shards' objects by planned path, their headers."""

    store: ObjectStore
    local_dir: Path
    """Holds the metadata files (config, tokenizer, index); the plan names shards under it too."""
    plan: PreloadPlan
    shards: dict[Path, ObjectRef]
    headers: dict[Path, bytes] = field(repr=False)
    cached: bool
    """Every shard is in ``local_dir`` and unchanged: load from disk (:func:`stream_checkpoint` does)."""


def open_remote(
    source: str,
    local_dir: str | os.PathLike[str] | None = None,
    *,
    cache_root: str | os.PathLike[str] | None = None,
    endpoint_url: str | None = None,
    workers: int = 8,
) -> RemoteCheckpoint:
    """List ``source`` (``s3://`` or ``cos://``), fetch its metadata files and shard headers, and plan it.

    The metadata files go to ``local_dir`` (default: ``cache_root/<scheme>/<bucket>/<prefix>``, with
    ``cache_root`` defaulting to ``$LLMFN_CACHE`` or ``~/.cache/llmfn``); unchanged ones are kept.
    """
    store = ObjectStore(source, endpoint_url, connections=max(workers, 10))
    root = Path(cache_root) if cache_root is not None else default_cache_dir()
    target = Path(local_dir) if local_dir is not None else local_dir_of(store, root)
    target.mkdir(parents=True, exist_ok=True)
    objects, shard_names = store.checkpoint_objects()
    manifest = read_manifest(target)
    shard_refs = [objects[name] for name in shard_names]
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="s3-meta") as pool:
        heads = pool.map(lambda ref: _read_head(store, ref), shard_refs)
        for name, ref in sorted(objects.items()):
            if name not in shard_names and not is_current(target, ref, manifest):
                (target / name).write_bytes(store.read_bytes(ref, 0, ref.size))
                record(target, manifest, ref)
        headers = {target / ref.name: head for ref, head in zip(shard_refs, heads, strict=True)}
    weight_map, listed = read_weight_map(target)
    if (
        listed != shard_names
    ):  # the index on disk is the one just listed: cannot differ unless replaced meanwhile
        raise PreloadError("index changed while it was read", file=store.url())
    parsed = []
    for ref in shard_refs:
        path = target / ref.name
        try:
            parsed.append(parse_header(path, ref.size, headers[path]))
        except PreloadError as exc:  # name the object, not the local path it was planned under
            raise PreloadError(
                exc.message, file=store.url(ref.name), tensor=exc.tensor, offset=exc.offset
            ) from None
    plan = plan_from_headers(target, weight_map, parsed)
    cached = all(is_current(target, ref, manifest) for ref in shard_refs)
    return RemoteCheckpoint(store, target, plan, {target / r.name: r for r in shard_refs}, headers, cached)


def _read_head(store: ObjectStore, ref: ObjectRef) -> bytes:
    """A shard's first bytes up to the end of its header (one ranged GET, two for a long header)."""
    head = store.read_bytes(ref, 0, min(ref.size, HEADER_PROBE_BYTES))
    needed = header_bytes_needed(head[:8], ref.size, store.url(ref.name))
    if needed > len(head):
        head += store.read_bytes(ref, len(head), needed)
    return head[:needed]


class StreamBackend:
    """The loader's backend for a remote checkpoint: ranged GETs into one anonymous image per shard."""

    def __init__(self, remote: RemoteCheckpoint, digests: dict[Path, str]) -> None:
        self.remote = remote
        self.plan = remote.plan
        self.runtime_bytes = remote.plan.file_bytes
        self.lane_per_file = False  # workers share each stage's ranges: the embedding arrives first
        self.pipelined = True  # no barrier between stages: each GET takes long, never drain the workers
        self._digests = digests
        self._images: dict[Path, mmap.mmap] = {}
        self._views: dict[Path, memoryview] = {}
        self._hashers: dict[Path, StreamHasher] = {}
        self._remaining = remote.plan.total_bytes
        self._lock = threading.Lock()

    def prepare(self, pool: ThreadPoolExecutor) -> None:
        """Allocate each shard's image (pages faulted in by the sockets' writes, in parallel) and hashers."""
        for shard in self.plan.files:
            image = mmap.mmap(-1, max(shard.size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            with contextlib.suppress(OSError):  # a kernel without transparent huge pages: plain pages
                madvise(buffer_address(image), max(shard.size, 1), MADV_HUGEPAGE)
            view = memoryview(image)[: shard.size]
            head = self.remote.headers[shard.path]
            view[: len(head)] = head
            self._images[shard.path], self._views[shard.path] = image, view
            if shard.path in self._digests:
                hasher = StreamHasher(self.remote.store.url(shard.path.name), view, self._digests[shard.path])
                hasher.filled(0, len(head))
                self._hashers[shard.path] = hasher

    def read_chunk(self, chunk: Chunk) -> int:
        ref = self.remote.shards[chunk.file.path]
        self.remote.store.read_into(ref, chunk.start, self._views[chunk.file.path][chunk.start : chunk.end])
        hasher = self._hashers.get(chunk.file.path)
        if hasher is not None:
            hasher.filled(chunk.start, chunk.end)
        with self._lock:
            self._remaining -= chunk.nbytes
        return chunk.nbytes

    def finish_stage(self) -> None:
        """After the last stage: every shard's sha256 checked (its ``end`` waits for this)."""
        if self._remaining == 0:
            for hasher in self._hashers.values():
                hasher.check()

    def tensor(self, entry: TensorEntry) -> torch.Tensor:
        return tensor_in_file_image(self._images[entry.file], entry)

    def close(self) -> None:
        """Stop unfinished hashers; the images live as long as their tensors."""
        for hasher in self._hashers.values():
            hasher.abort()

    def images(self) -> list[tuple[ShardFile, memoryview]]:
        """Each shard and its complete image (valid after a successful load)."""
        return [(shard, self._views[shard.path]) for shard in self.plan.files]


def stream_checkpoint(
    remote: RemoteCheckpoint,
    *,
    workers: int = 8,
    verify: bool | None = None,
    on_event: EventCallback | None = None,
    cache: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> LoadedCheckpoint:
    """Load ``remote`` into CPU memory by ranged parallel reads, stage by stage (see the module docstring).

    ``verify``: ``True`` requires a known sha256 for every shard (``x-amz-meta-sha256`` or a full-object
    ``ChecksumSHA256``) and checks it; ``None`` checks the shards whose digest is known; ``False`` none.
    ``cache``: keep the shards in ``remote.local_dir`` (written in the background after the load; the
    returned checkpoint's ``cache_writer`` thread can be joined); a cached, unchanged copy is loaded
    from disk. ``workers`` parallel ranged GETs of ``chunk_bytes`` each.
    """
    if remote.cached and cache:
        return load_checkpoint(remote.local_dir, workers=workers, verify=bool(verify), on_event=on_event)
    digests: dict[Path, str] = {}
    if verify is not False:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="s3-head") as pool:
            known = dict(
                zip(remote.shards, pool.map(remote.store.sha256, remote.shards.values()), strict=True)
            )
        for path, digest in known.items():
            if digest:
                digests[path] = digest
            elif verify:
                raise PreloadError(
                    "no sha256 known for this object: upload it with metadata sha256=<hex> "
                    "(x-amz-meta-sha256) or a full-object SHA256 checksum, or load without verify",
                    file=remote.store.url(path.name),
                )
    backend = StreamBackend(remote, digests)
    try:
        tensors, timings = run_plan(
            remote.plan, backend, workers=workers, verify=False, on_event=on_event, chunk_bytes=chunk_bytes
        )
    finally:
        backend.close()
    loaded = LoadedCheckpoint(
        remote.plan, tensors, timings, "cpu", "stream", bool(digests) and len(digests) == len(remote.shards)
    )
    if cache:
        loaded.cache_writer = threading.Thread(
            target=_write_cache, args=(remote, backend.images()), name="llmfn-cache-writer", daemon=True
        )
        loaded.cache_writer.start()
    return loaded


def _write_cache(remote: RemoteCheckpoint, images: list[tuple[ShardFile, memoryview]]) -> None:
    """Write each streamed shard to ``remote.local_dir`` (``.partial``, then renamed) and record its ETag."""
    manifest = read_manifest(remote.local_dir)
    for shard, view in images:
        partial = shard.path.with_name(shard.path.name + ".partial")
        with open(partial, "wb") as fh:
            fh.write(view)
            os.fsync(fh.fileno())
        partial.rename(shard.path)
        record(remote.local_dir, manifest, remote.shards[shard.path])
