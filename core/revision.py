"""The one model-revision rule: what ``llmfn:modelRevision``, ``llmfn promote --model-revision`` and the
function's ``LLMFN_MODEL_REVISION`` (``functions.settings.ServeSettings.model_revision``) accept.

A revision is a word: 1 to 128 visible ASCII characters, no space or control character. It is written
into a published version's description, ``llmfn model-revision=REV previous=N``, which ``llmfn promote``
splits on spaces to find its version again (README.md, "Scale and promote a deployed stack"), and
Lambda's Description holds at most 256 characters. A Hub source pinned by the stack needs more: the full
40-character commit sha, because a branch or a tag can move under a deployed version (README.md, the
stack key table). S3 / COS sources and promotions name a revision with any word (``rev-2``), since
their bytes are at the URI. README.md, "Configuration: one mechanism, one name per concept", lists it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from core.errors import InputError

MAX_REVISION_CHARS = 128
_WORD = re.compile(rf"[\x21-\x7e]{{1,{MAX_REVISION_CHARS}}}")
_COMMIT = re.compile(r"[0-9a-f]{40}")

REVISION_ALLOWED = f"a word of 1 to {MAX_REVISION_CHARS} visible ASCII characters (no spaces), e.g. rev-2"
COMMIT_ALLOWED = "a full 40-character commit sha (pin the revision; a branch can move)"


def revision_problem(value: str, *, commit: bool = False) -> str | None:
    """Why ``value`` is no revision (``commit``: no pinned Hub commit), or None when it is one."""
    if commit:
        return None if _COMMIT.fullmatch(value) else f"must be {COMMIT_ALLOWED}"
    return None if _WORD.fullmatch(value) else f"must be {REVISION_ALLOWED}"


def check_revision(value: str, *, field: str = "model_revision", commit: bool = False) -> str:
    """``value`` when it is a revision (a 40-hex commit with ``commit``), else an ``InputError`` naming
    ``field``, the value and what is allowed."""
    problem = revision_problem(value, commit=commit)
    if problem is not None:
        raise InputError(
            f"{problem}, got {value!r}",
            field=field,
            value=value,
            allowed=COMMIT_ALLOWED if commit else REVISION_ALLOWED,
        )
    return value


def _check_word(value: str) -> str:
    problem = revision_problem(value)
    if problem is not None:
        raise InputError(problem)
    return value


ModelRevision = Annotated[str, AfterValidator(_check_word)]
"""A model revision as a pydantic field type: :func:`revision_problem`'s word rule."""
