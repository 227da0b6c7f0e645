"""Configuration of the inference function, validated once at the edge.

``ServeSettings`` is built from keyword arguments (``python -m functions.serve`` flags, tests) or from
``LLMFN_*`` environment variables (the cloud entry points): ``LLMFN_MODEL``, ``LLMFN_ENGINE``,
``LLMFN_API_KEY``, ``LLMFN_RATE_PER_S``... (one per field, upper-cased). Every error names the field,
the bad value and what is allowed, as a ``SettingsError`` (an ``InputError``, a ``ValueError``).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from core.contract import ENV_API_KEY, ENV_PREFIX
from core.errors import InputError
from core.revision import ModelRevision
from core.secrets import ApiKey
from core.validated import ConfigError, FrozenModel, env_values

EngineName = Literal["transformers", "null", "vllm"]


class SettingsError(ConfigError):
    """Invalid configuration; the message names each bad field and what it accepts.

    A ``core.validated.ConfigError`` (what ``FrozenModel`` raises, with its ``problems``; an
    ``InputError``, so the CLI prints it as one line): the configuration models of ``functions/``
    and ``llmfn/`` name it as their ``error_type``.
    """


class ServeSettings(FrozenModel):
    """Everything the app needs; units in the field names (``_s`` seconds, ``_bytes``, ``_per_s``).

    A frozen pydantic model (:class:`core.validated.FrozenModel`); invalid values raise
    :class:`SettingsError` naming each field (and its ``LLMFN_*`` variable when read from the env).
    """

    error_type = SettingsError
    error_prefix = "invalid settings: "

    model: Path | None = Field(None, description="Checkpoint directory (safetensors + config + tokenizer).")
    model_source: str | None = Field(
        None,
        description="Remote checkpoint fetched at start-up, in the background like the preload: a Hub id "
        "(org/name or hf://org/name), s3://bucket/prefix or cos://bucket/prefix. Set by the cloud stacks.",
    )
    model_revision: ModelRevision | None = Field(
        None,
        description="Revision of model_source (core.revision's rule: one word; a stack pins a Hub "
        "source to its 40-hex commit sha, a promotion may name any word).",
    )
    model_cache_dir: Path | None = Field(
        None, description="Where model_source is fetched to; default: preload's cache (~/.cache/llmfn)."
    )
    model_name: str | None = Field(
        None, description="Model id served in /v1/models and accepted in requests; default: the dir name."
    )
    engine: EngineName = "transformers"
    device: str = Field("cpu", description="torch device for the transformers engine: cpu, cuda, cuda:1.")
    preload_workers: int = Field(4, ge=1, le=64, description="Parallel readers of the preload.")
    cpu_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch intra-op threads on CPU; default: 1 for checkpoints under 256 MB (their "
        "ops are too small to split, and threads fight on a shared machine), else torch's default.",
    )
    api_key: ApiKey | None = Field(
        None,
        description="Bearer key required on every route but /healthz (/v1/*, /readyz, /metrics); None: open. "
        "1-4096 visible ASCII characters: an empty, blank or multi-line key is refused, never served open.",
    )
    public: bool = Field(
        False,
        description="Serve without api_key on a non-loopback host or in a cloud entry point (LLMFN_PUBLIC=1, "
        "--no-auth): anyone who reaches the address may use the model. Without it such a start is refused.",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body (413 above).")

    # Admission: token bucket in front of a bounded queue in front of the engine's concurrency.
    rate_per_s: float = Field(50.0, gt=0, description="Token-bucket refill rate, requests per second.")
    burst: int = Field(100, ge=1, description="Token-bucket capacity, requests.")
    max_concurrency: int = Field(8, ge=1, description="Requests the engine runs at once.")
    max_queue: int = Field(64, ge=0, description="Admitted requests that may wait for a slot (429 above).")
    queue_timeout_s: float = Field(30.0, gt=0, description="Longest wait for a slot before a 429.")
    ready_wait_s: float = Field(
        0.0, ge=0, description="How long a request before readiness waits for the preload (then 503)."
    )
    session_hold_s: float = Field(
        0.0,
        ge=0,
        description="Keep a slot for a session (header x-llmfn-session, else the request's "
        "user field) this long after each of its requests; 0: off.",
    )
    max_held_sessions: int = Field(4, ge=0, description="At most this many slots are held for sessions.")

    # Circuit breaker around the engine.
    breaker_failure_threshold: int = Field(5, ge=1, description="Consecutive engine failures that open it.")
    breaker_recovery_s: float = Field(30.0, gt=0, description="Open time before one half-open probe.")

    # Request shaping (seed 001) and the engine's limits.
    max_model_len: int | None = Field(
        None, ge=16, description="Context length, prompt + output tokens; default: the model's config."
    )
    max_tokens_cap: int = Field(4096, ge=1, description="Largest max_tokens ever generated.")
    long_prompt_chars: int = Field(500, ge=1, description="Prompts at least this long get the long default.")
    prompt_bytes_per_token: int = Field(
        16,
        ge=1,
        le=1024,
        description="A prompt over context length x this many UTF-8 bytes is refused (400) before it is "
        "tokenised: tokenising it would cost CPU time for an answer that must be a refusal anyway. BPE "
        "tokenizers average 3-5 bytes per token on text; 16 leaves room for long runs of spaces or symbols.",
    )
    default_max_tokens_short: int = Field(1024, ge=1, description="max_tokens when unset, short prompts.")
    default_max_tokens_long: int = Field(2048, ge=1, description="max_tokens when unset, long prompts.")

    # The null engine (benchmarks, gateway tests): a fixed answer, no model.
    null_completion_tokens: int = Field(8, ge=1, description="Tokens the null engine answers with.")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(True, description="One JSON log line per request.")

    @model_validator(mode="after")
    def _check_model(self) -> ServeSettings:
        if self.model is not None and self.model_source is not None:
            raise InputError("model: give a checkpoint directory or model_source, not both")
        if self.engine != "null" and self.model is None and self.model_source is None:
            raise InputError(
                f"model: a checkpoint directory (or model_source) is required with engine={self.engine!r}"
            )
        if self.model is not None and self.engine != "null" and not self.model.is_dir():
            raise InputError(f"model: {str(self.model)!r} is not a directory")
        if not is_loopback(self.host):
            self.require_key_unless_public(f"host {self.host!r} is not a loopback address")
        return self

    def require_key_unless_public(self, reason: str) -> None:
        """Refuse to serve without ``api_key`` (``reason`` says why it would be exposed) unless ``public``."""
        if self.api_key is None and not self.public:
            raise SettingsError(
                f"api_key: required because {reason}, so anyone who reaches it could use the model; set "
                f"{ENV_PREFIX}API_KEY (--api-key), or {ENV_PREFIX}PUBLIC=1 (--no-auth) to serve it open"
            )

    @property
    def served_model_name(self) -> str:
        """The model id clients send: ``model_name``, else the checkpoint directory's (or source's) name."""
        if self.model_name:
            return self.model_name
        if self.model_source is not None:
            return self.model_source.removeprefix("hf://").rstrip("/")
        return self.model.name if self.model is not None else "null"

    @classmethod
    def build(cls, **values: Any) -> ServeSettings:
        """Validate ``values`` (None means: use the default) or raise ``SettingsError`` naming fields."""
        return cls(**{k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> ServeSettings:
        """Read ``LLMFN_<FIELD>`` variables (e.g. ``LLMFN_MODEL``, ``LLMFN_RATE_PER_S``); overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = env_values(cls.model_fields, env, ENV_PREFIX)
        if env.get(ENV_API_KEY) is not None:  # set but empty (an unset shell variable): refused, not "no key"
            values["api_key"] = env[ENV_API_KEY]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_data(values, ENV_PREFIX)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1); False for anything else,
    ``0.0.0.0`` and ``::`` (every interface) included."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
