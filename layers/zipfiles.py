"""Reproducible zip archives: the same files always give byte-identical zips (same sha256).

Entries are sorted by path, stamped 1980-01-01 00:00:00 (the earliest time zip can store), with
fixed Unix permissions (0755 for executables, 0644 otherwise) and fixed deflate settings, so the
archive depends only on the files' relative paths, contents and executable bits.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_UNIX_SYSTEM = 3  # ZipInfo.create_system: Unix, so external_attr carries the permission bits
_REGULAR_FILE = 0o100000
_SKIPPED_DIR_NAMES = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class ZipEntry:
    """One file to archive: its path inside the zip and where it is on disk."""

    arcname: str
    source: Path


@dataclass(frozen=True)
class ManifestEntry:
    """One archived file: path inside the zip, size in bytes, sha256 of its content (hex)."""

    path: str
    size: int
    sha256: str


def collect_tree(root: Path, prefix: str = "") -> list[ZipEntry]:
    """Every file under ``root`` as entries named ``prefix + relative path`` (bytecode caches skipped)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIR_NAMES)
        for name in filenames:
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = Path(dirpath) / name
            relative = path.relative_to(root).as_posix()
            entries.append(ZipEntry(arcname=f"{prefix}{relative}", source=path))
    return entries


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_reproducible_zip(entries: list[ZipEntry], destination: Path) -> list[ManifestEntry]:
    """Write ``entries`` to ``destination`` reproducibly; return the per-file manifest, sorted by path.

    Raises ValueError when two entries claim the same path inside the zip.
    """
    ordered = sorted(entries, key=lambda e: e.arcname)
    for before, after in itertools.pairwise(ordered):
        if before.arcname == after.arcname:
            raise InputError(
                f"two files would be archived as {before.arcname!r}: {before.source}, {after.source}"
            )
    destination.parent.mkdir(parents=True, exist_ok=True)
    manifest = []
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for entry in ordered:
            info = zipfile.ZipInfo(entry.arcname, date_time=FIXED_DATE_TIME)
            info.create_system = _UNIX_SYSTEM
            mode = 0o755 if os.access(entry.source, os.X_OK) else 0o644
            info.external_attr = (_REGULAR_FILE | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = entry.source.read_bytes()
            archive.writestr(info, data, compresslevel=9)
            manifest.append(ManifestEntry(entry.arcname, len(data), hashlib.sha256(data).hexdigest()))
    return manifest
