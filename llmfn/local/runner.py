"""Run the local runtime in the foreground until Ctrl-C or SIGTERM, leaving no process behind."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from functions.guards.headers import server_options
from llmfn.local.autoscaler import Autoscaler, policy_config
from llmfn.local.config import DevConfig
from llmfn.local.gateway import Gateway, create_gateway
from llmfn.local.pool import WorkerPool


def build_gateway(config: DevConfig, policy_overrides: dict[str, Any] | None = None) -> Gateway:
    """Pool, policy and gateway for ``config``; nothing is started until the app's lifespan runs."""
    pool = WorkerPool(config)
    return Gateway(config, pool, Autoscaler(config.policy, policy_config(config, policy_overrides), pool))


class _DrainingServer(uvicorn.Server):
    """uvicorn's server that tells the gateway to drain as soon as a shutdown signal arrives, so that
    open streams end with an error event at once rather than being cancelled at the graceful timeout."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.gateway.begin_drain_threadsafe()
        super().handle_exit(sig, frame)


def serve(
    gateway: Gateway,
    on_ready: Callable[[Gateway], None] | None = None,
    on_stopped: Callable[[Gateway], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve on ``config.host:config.port`` until SIGINT / SIGTERM; the lifespan's shutdown stops
    every worker's process group (and each worker dies with this process if it is SIGKILLed).

    After the clean shutdown uvicorn re-raises the signal, so the exit status says which one it was
    (130 for Ctrl-C, 143 for SIGTERM in a shell), as for any well-behaved Unix server."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied request is too many
    config = gateway.config
    server = _DrainingServer(
        uvicorn.Config(
            create_gateway(gateway, on_ready, on_stopped),
            host=config.host,
            port=config.port,
            log_level=log_level,
            timeout_graceful_shutdown=5,
            lifespan="on",
            **server_options(),
        ),
        gateway,
    )
    server.run()
