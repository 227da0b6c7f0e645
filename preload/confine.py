"""Every file a checkpoint reader opens stays inside the model directory, links resolved.

A shard, index, config or tokenizer file may be a symbolic link (the Hugging Face cache stores each file
of a snapshot as a link into the repository folder's ``blobs``: ``<cache>/models--org--name/snapshots/
<commit>/model.safetensors -> ../../blobs/<sha256>``, see README.md, "Start fast"). A link that
resolves anywhere else (an absolute target, ``../..`` out of the directory) is refused by name before a
byte of it is read, so an untrusted checkpoint cannot make the loader read (and echo in an error) a file
such as ``/etc/passwd``.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch
from pathlib import Path

from core.errors import PreloadError

METADATA_PATTERNS = ("*.json", "*.txt", "*.jinja", "*.model", "*.tiktoken")
"""Small non-weight files read beside the shards (config, tokenizer, chat template, index)."""
READ_PATTERNS = (*METADATA_PATTERNS, "*.safetensors", "SHA256SUMS")
"""Every file of a model directory that a reader (ours, transformers', vLLM's) opens."""
HF_SNAPSHOTS, HF_BLOBS = "snapshots", "blobs"
"""The Hugging Face cache's folders of one repository: ``snapshots/<commit>/`` links into ``blobs/``."""


def allowed_roots(model_dir: Path) -> tuple[Path, ...]:
    """The resolved folders whose files ``model_dir``'s links may point to: the directory itself and,
    for a Hugging Face cache snapshot (``<repo>/snapshots/<commit>``, or a subfolder of one), that
    repository's ``blobs``."""
    real = Path(os.path.realpath(model_dir))
    for snapshot in (real, *real.parents):
        if snapshot.parent.name == HF_SNAPSHOTS:
            return (real, snapshot.parent.parent / HF_BLOBS)
    return (real,)


def confined(model_dir: Path, path: Path) -> Path:
    """The resolved path of ``path`` (a file named in ``model_dir``); :class:`PreloadError` naming
    ``path`` and its target when it resolves outside :func:`allowed_roots`."""
    real = Path(os.path.realpath(path))
    roots = allowed_roots(model_dir)
    if not any(real.is_relative_to(root) for root in roots):
        raise PreloadError(
            f"resolves to {real}, outside the model directory {roots[0]}: a checkpoint's files (links "
            "included) must stay inside it; copy the file into the directory",
            file=path,
        )
    return real


def confine_directory(model_dir: Path) -> None:
    """Refuse ``model_dir`` when any file a reader opens (:data:`READ_PATTERNS`: shards, index, config,
    tokenizer, chat template, sums) resolves outside it (:func:`confined`): checked before transformers or
    vLLM read the tokenizer and config themselves."""
    with os.scandir(model_dir) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if any(fnmatch(entry.name, pattern) for pattern in READ_PATTERNS):
                confined(model_dir, Path(entry.path))
