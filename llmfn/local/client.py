"""A small OpenAI-compatible client over httpx, shared by ``llmfn invoke`` and ``llmfn load``.

It measures what a streaming user sees: time to first token (first content delta) and end-to-end
time, and keeps the gateway's routing headers (worker, tier, cold start).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from core.contract import ENV_API_KEY
from core.errors import InputError

API_KEY_VARIABLES = (ENV_API_KEY, "OPENAI_API_KEY")


def api_key_from_env() -> str | None:
    """The API key from ``LLMFN_API_KEY``, else ``OPENAI_API_KEY``; None when neither is set."""
    for name in API_KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def v1_base(url: str) -> str:
    """``http://host:port`` or ``.../v1`` -> the ``.../v1`` base, without a trailing slash."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InputError(f"{url!r}: must start with http:// or https://", field="url", value=url)
    return base if base.endswith("/v1") else base + "/v1"


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


@dataclass
class Completion:
    """One answered (or refused) request. Times in seconds from sending it.

    ttft_s: to the first content token (None when none came); e2e_s: to the end of the answer.
    error: the server's error message for a non-2xx status or an error event mid-stream.
    """

    status: int
    text: str = ""
    ttft_s: float | None = None
    e2e_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def cold_start(self) -> bool:
        """True when the gateway says this request waited for a worker's cold start."""
        return self.headers.get("x-llmfn-cold-start") == "1"


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(data["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:500]


async def first_model(client: httpx.AsyncClient, base: str, headers: dict[str, str]) -> str:
    """The id of the first model ``GET /v1/models`` lists."""
    response = await client.get(f"{base}/models", headers=headers)
    if response.status_code != 200:
        raise RuntimeError(
            f"GET {base}/models answered {response.status_code}: {_error_message(response.content)}"
        )
    return str(response.json()["data"][0]["id"])


async def chat(
    client: httpx.AsyncClient,
    base: str,
    body: dict[str, object],
    headers: dict[str, str],
    on_text: Callable[[str], None] | None = None,
) -> Completion:
    """POST ``/chat/completions`` (streaming when ``body["stream"]``), calling ``on_text`` per delta."""
    sent = time.perf_counter()
    streaming = bool(body.get("stream"))
    async with client.stream("POST", f"{base}/chat/completions", json=body, headers=headers) as response:
        result = Completion(status=response.status_code, headers=dict(response.headers))
        if response.status_code >= 400:
            result.error = _error_message(await response.aread())
        elif not streaming:
            data = json.loads(await response.aread())
            result.text = data["choices"][0]["message"].get("content") or ""
            result.ttft_s = time.perf_counter() - sent
            _take_usage(result, data)
            if on_text is not None:
                on_text(result.text)
        else:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data_text = line[5:].strip()
                if data_text == "[DONE]":
                    break
                event = json.loads(data_text)
                if "error" in event:
                    result.error = str(event["error"].get("message", event["error"]))
                    break
                _take_usage(result, event)
                for choice in event.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if delta:
                        if result.ttft_s is None:
                            result.ttft_s = time.perf_counter() - sent
                        result.text += delta
                        if on_text is not None:
                            on_text(delta)
    result.e2e_s = time.perf_counter() - sent
    return result


def _take_usage(result: Completion, data: dict[str, object]) -> None:
    usage = data.get("usage")
    if isinstance(usage, dict):
        result.prompt_tokens = usage.get("prompt_tokens")
        result.completion_tokens = usage.get("completion_tokens")
