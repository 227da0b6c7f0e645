"""One declaration per concept (README.md, "Configuration: one mechanism, one name per concept"): each
rule below is declared once in ``core/`` and every reader of the concept applies that same rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.errors import InputError
from functions.settings import ServeSettings
from llmfn.release.promotion import PromotionPlan

SHA = "0123456789abcdef0123456789abcdef01234567"

# What a promotion and the function's settings read: LLMFN_MODEL_REVISION is set by the stack (a sha)
# and by `llmfn promote` (any word), so both take the same word rule.
REVISION_READERS: dict[str, Callable[[str], Any]] = {
    "llmfn promote": lambda rev: PromotionPlan(model_revision=rev),
    "serve settings": lambda rev: ServeSettings(model_source="org/name", model_revision=rev),
    "LLMFN_MODEL_REVISION": lambda rev: ServeSettings.from_env(
        {"LLMFN_MODEL_SOURCE": "org/name", "LLMFN_MODEL_REVISION": rev}
    ),
}


@pytest.mark.parametrize("reader", sorted(REVISION_READERS))
@pytest.mark.parametrize("revision", ["rev-2", SHA, "v1.0", "r" * 128])
def test_a_revision_word_is_read_alike_everywhere(reader: str, revision: str) -> None:
    assert REVISION_READERS[reader](revision).model_revision == revision


@pytest.mark.parametrize("reader", sorted(REVISION_READERS))
@pytest.mark.parametrize("revision", ["rev 2", "rev-2\n", "\trev", "r" * 129, "révision"])
def test_a_revision_that_is_no_word_is_refused_everywhere_by_field(reader: str, revision: str) -> None:
    with pytest.raises(InputError) as caught:
        REVISION_READERS[reader](revision)
    message = str(caught.value)
    assert "model_revision" in message and "1 to 128 visible ASCII characters" in message, message
