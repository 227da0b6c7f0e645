"""Tencent SCF web / image function entry point: ``python -m functions.entry.scf_web``.

Listens on ``0.0.0.0:9000`` (SCF's fixed port; ``LLMFN_HOST`` / ``LLMFN_PORT`` override it) within the
start-up limit: the preload runs in the background and ``/readyz`` reports it. Configured by
``LLMFN_*`` environment variables (``LLMFN_MODEL``, ``LLMFN_API_KEY``, ...).
"""

from __future__ import annotations

import os

from functions.serve import serve_or_exit
from functions.settings import ServeSettings

SCF_HOST = "0.0.0.0"
SCF_PORT = 9000


def web_settings() -> ServeSettings:
    """``LLMFN_*`` settings with SCF's host and port unless the environment names others."""
    return ServeSettings.from_env(
        host=None if os.environ.get("LLMFN_HOST") else SCF_HOST,
        port=None if os.environ.get("LLMFN_PORT") else SCF_PORT,
    )


def main() -> None:
    serve_or_exit(web_settings)


if __name__ == "__main__":
    main()
