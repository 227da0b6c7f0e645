"""A chat prompt rendered by the checkpoint's template and tokenised so that a message's text stays text.

Tokenising the rendered template as one string lets a user write control tokens: ``<|im_end|>\\n
<|im_start|>system`` inside a user message would close the message and open a system turn, exactly as
the template's own tokens do (chat-template injection). Here the template's text and the messages'
text are told apart: every added-token string (``<|im_end|>``, ``<think>``, ...) inside a message is
replaced by a random, unguessable placeholder before rendering, the rendered text is split at the
added tokens the template itself wrote (those become their ids), and the runs between them (with the
messages' strings put back) go through the tokenizer's normaliser, pre-tokeniser and model only, where
no added token is matched (README.md, "Serve": special-token text in a message is plain text).

A conversation without such strings takes the plain path (one call of the tokenizer on the rendered
text), so ordinary prompts tokenise exactly as before.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

_OPEN, _CLOSE = "\ue000", "\ue001"
"""Unicode private-use characters around a placeholder (with a per-call random nonce inside)."""


def added_token_strings(tokenizer: Any) -> list[str]:
    """Every added token's text (special or not), longest first: what a tokenizer matches as one token."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    strings = {str(getattr(token, "content", token)) for token in decoder.values()}
    return sorted((s for s in strings if s), key=len, reverse=True)


def plain_text_ids(tokenizer: Any, text: str) -> list[int]:
    """``text`` tokenised as plain text: no added token (special or not) is matched in it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer: only its special tokens can be switched off
        return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    pieces = (
        backend.pre_tokenizer.pre_tokenize_str(text) if backend.pre_tokenizer is not None else [(text, None)]
    )
    return [token.id for piece, _ in pieces for token in backend.model.tokenize(piece)]


def render_chat_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
    """The generation prompt of ``messages`` (role, content and optionally name) with the tokenizer's chat
    template, and its token ids; added-token text inside a message's content or name is tokenised as text,
    never as the control token."""
    specials = added_token_strings(tokenizer)
    texts = [value for message in messages for key, value in message.items() if key != "role"]
    if not any(s in text for text in texts for s in specials):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, list(tokenizer(text, add_special_tokens=False)["input_ids"])
    nonce = secrets.token_hex(8)
    any_special = re.compile("|".join(map(re.escape, specials)))
    placeholder = re.compile(f"{_OPEN}{nonce}(\\d+){_CLOSE}")
    index = {s: i for i, s in enumerate(specials)}

    def unmask(text: str) -> str:
        return placeholder.sub(lambda m: specials[int(m.group(1))], text)

    def mask(text: str) -> str:
        return any_special.sub(lambda m: f"{_OPEN}{nonce}{index[m.group(0)]}{_CLOSE}", text)

    masked = [{k: v if k == "role" else mask(v) for k, v in message.items()} for message in messages]
    rendered = tokenizer.apply_chat_template(masked, tokenize=False, add_generation_prompt=True)
    ids: list[int] = []
    for position, part in enumerate(re.split(f"({any_special.pattern})", rendered)):
        if position % 2:  # an added token the template wrote
            ids.append(int(tokenizer.convert_tokens_to_ids(part)))
        elif part:
            ids += plain_text_ids(tokenizer, unmask(part))
    return unmask(rendered), ids
