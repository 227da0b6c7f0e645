"""Where a checkpoint comes from: a local directory, the Hugging Face Hub, or S3 / Tencent COS.

Every source resolves to a local directory that :func:`preload.load_checkpoint` reads. Remote sources
fetch only what loading needs (config, tokenizer, the index and the shards it names) and never expose
a half-written file: downloads land under a temporary name and are renamed when complete.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.errors import PreloadError
from preload import objectstore
from preload.integrity import SUMS_FILE
from preload.jsonfile import parse_json
from preload.objectstore import METADATA_PATTERNS, ObjectRef, ObjectStore, is_object_store
from preload.plan import INDEX_FILE, SINGLE_FILE

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def default_cache_dir() -> Path:
    """``$LLMFN_CACHE`` or ``~/.cache/llmfn``: where remote checkpoints are kept."""
    return Path(os.environ.get("LLMFN_CACHE", Path.home() / ".cache" / "llmfn"))


def resolve_source(
    source: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int = 8,
    endpoint_url: str | None = None,
) -> Path:
    """The local directory holding ``source``'s checkpoint, fetched first when remote.

    ``source`` is a local directory; ``hf://org/name`` or ``org/name`` (Hugging Face Hub, ``revision``
    a branch, tag or commit, pinned to its commit; ``HF_HUB_OFFLINE=1`` reads only the local cache);
    ``s3://bucket/prefix`` or ``cos://bucket/prefix`` (boto3; ``endpoint_url`` or ``AWS_ENDPOINT_URL``
    selects the endpoint, for COS ``https://cos.<region>.myqcloud.com``). ``endpoint_url`` also selects
    a hub mirror (default ``HF_ENDPOINT``). ``workers`` parallel requests.
    """
    if is_object_store(source):
        if revision is not None:
            raise PreloadError(
                f"applies to Hugging Face Hub sources only, not to {source}", field="revision", value=revision
            )
        return _fetch_s3(source, Path(cache_dir) if cache_dir else default_cache_dir(), workers, endpoint_url)
    hub_id = source.removeprefix("hf://")
    local = Path(source).expanduser()
    if not source.startswith("hf://") and (local.exists() or not _HUB_ID.match(source)):
        if not local.is_dir():
            raise FileNotFoundError(
                f"source {source!r} is not a directory; expected a local directory, hf://org/name, s3:// or cos://"
            )
        if revision is not None:
            raise PreloadError(
                f"applies to Hugging Face Hub sources only, not to the local directory {source}",
                field="revision",
                value=revision,
            )
        return local
    if not _HUB_ID.match(hub_id):
        raise PreloadError(f"source {source!r} is not a Hugging Face Hub id of the form org/name")
    return _fetch_hub(hub_id, revision, cache_dir, workers, endpoint_url)


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {
        "1",
        "ON",
        "YES",
        "TRUE",
    }


def _fetch_hub(
    repo_id: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    workers: int,
    endpoint: str | None,
) -> Path:
    """Hub checkpoint: revision pinned to its commit, only the shards the index names; offline: the cache."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = str(cache_dir) if cache_dir is not None else None
    offline = _hub_offline()
    wanted = revision or "main"
    try:
        if offline:
            commit, has_index = wanted, True  # snapshot_download resolves the cached ref
        else:
            info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision)
            commit = info.sha or wanted
            names = {s.rfilename for s in info.siblings or []}
            if INDEX_FILE not in names and SINGLE_FILE not in names:
                raise PreloadError(
                    f"{repo_id}@{commit} has no {INDEX_FILE} or {SINGLE_FILE}", file=f"hf://{repo_id}"
                )
            has_index = INDEX_FILE in names
        shards = [SINGLE_FILE]
        if has_index:
            try:
                index_path = hf_hub_download(
                    repo_id,
                    INDEX_FILE,
                    revision=commit,
                    cache_dir=cache,
                    endpoint=endpoint,
                    local_files_only=offline,
                )
                index = parse_json(Path(index_path).read_bytes(), f"hf://{repo_id}/{INDEX_FILE}", "index")
                weight_map = index.get("weight_map") if isinstance(index, dict) else None
                if not isinstance(weight_map, dict):
                    raise PreloadError("index has no weight_map", file=f"hf://{repo_id}/{INDEX_FILE}")
                shards = sorted({str(shard) for shard in weight_map.values()})
            except (LocalEntryNotFoundError, EntryNotFoundError):
                if not offline:
                    raise
        path = Path(
            snapshot_download(
                repo_id,
                revision=commit,
                cache_dir=cache,
                allow_patterns=[*METADATA_PATTERNS, *shards],
                max_workers=workers,
                endpoint=endpoint,
                local_files_only=offline,
            )
        )
    except LocalEntryNotFoundError as exc:
        raise PreloadError(
            f"{repo_id}@{wanted} is not in the local cache and HF_HUB_OFFLINE is set: {exc}",
            file=f"hf://{repo_id}",
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise PreloadError(f"{repo_id}@{wanted}: {exc}", file=f"hf://{repo_id}") from None
    if not offline and wanted != commit and "/" not in wanted:
        ref = (
            path.parent.parent / "refs" / wanted
        )  # pinned by commit: record the ref so offline mode finds it
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    return path


def _download(store: ObjectStore, ref: ObjectRef, target: Path, pool: ThreadPoolExecutor) -> None:
    """Parallel ranged GETs (each retried on its own) straight into a mapping of ``target.partial``,
    renamed when complete."""
    partial = target.with_name(target.name + ".partial")
    with open(partial, "w+b") as fh:
        fh.truncate(ref.size)
        if ref.size:
            with mmap.mmap(fh.fileno(), ref.size) as mapping, memoryview(mapping) as view:
                starts = range(0, ref.size, objectstore.RANGE_BYTES)
                ranges = [view[s : s + objectstore.RANGE_BYTES] for s in starts]
                try:
                    list(pool.map(store.read_into, [ref] * len(ranges), starts, ranges))
                finally:
                    for part in ranges:
                        part.release()
    partial.rename(target)


MANIFEST_FILE = ".llmfn-source.json"
"""Name -> ETag of each object kept in a local directory of a remote checkpoint."""


def local_dir_of(store: ObjectStore, cache_root: Path) -> Path:
    """``cache_root/<scheme>/<bucket>/<prefix>``: where a store's files are kept locally."""
    return cache_root / store.scheme / store.bucket / store.prefix


def read_manifest(local_dir: Path) -> dict[str, str]:
    """Name -> ETag of the objects kept in ``local_dir`` (empty when none)."""
    try:
        return dict(json.loads((local_dir / MANIFEST_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, RecursionError):  # unreadable, not JSON, too deep: none kept
        return {}


def is_current(local_dir: Path, ref: ObjectRef, manifest: dict[str, str]) -> bool:
    """Whether ``local_dir`` holds ``ref`` as it is in the store now (same ETag and size)."""
    path = local_dir / ref.name
    return manifest.get(ref.name) == ref.etag and path.is_file() and path.stat().st_size == ref.size


def record(local_dir: Path, manifest: dict[str, str], ref: ObjectRef) -> None:
    """Note in the manifest that ``local_dir/ref.name`` is ``ref`` (call once the file is complete)."""
    manifest[ref.name] = ref.etag
    partial = local_dir / (MANIFEST_FILE + ".partial")
    partial.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    partial.replace(local_dir / MANIFEST_FILE)


def _fetch_s3(source: str, cache_root: Path, workers: int, endpoint_url: str | None) -> Path:
    """S3 / COS checkpoint into ``cache_root/<scheme>/<bucket>/<prefix>``; unchanged objects are kept."""
    store = ObjectStore(source, endpoint_url, connections=max(workers, 10))
    target_dir = local_dir_of(store, cache_root)
    target_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(target_dir)
    wanted, _ = store.checkpoint_objects()
    digests: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="s3-range") as pool:
        for name, ref in sorted(wanted.items()):
            if not is_current(target_dir, ref, manifest):
                _download(store, ref, target_dir / name, pool)
                record(target_dir, manifest, ref)
            if name.endswith(".safetensors"):
                digest = store.sha256(ref)
                if digest:
                    digests[name] = digest
    sums_path = target_dir / SUMS_FILE
    if digests:
        sums_path.write_text("".join(f"{d}  {n}\n" for n, d in sorted(digests.items())))
    else:
        sums_path.unlink(missing_ok=True)  # never keep digests of objects that may have changed
    return target_dir
