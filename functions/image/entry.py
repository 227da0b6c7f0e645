"""The function image's entry command: ``python -m functions.image.entry [HANDLER]``.

One image serves both clouds; the entry command tells them apart by the environment:

- Lambda (the runtime sets ``AWS_LAMBDA_RUNTIME_API``): the Lambda runtime interface client
  (``awslambdaric``) fetches invocations from the runtime API and runs ``HANDLER`` (the image's ``CMD``,
  ``functions.cloud.aws.entry.handler``; the scaler function's ``image_config.command`` names
  ``functions.scaler.handler.lambda_handler`` instead). On Lambda Managed Instances
  (``AWS_LAMBDA_MAX_CONCURRENCY`` set: the client forks that many workers) the inference handler is
  replaced by one inference server on 127.0.0.1 and :mod:`functions.image.forward` in the workers, so
  the environment loads the model once (see that module). The runtime client starts only once that
  server's ``/readyz`` answers 200: "Init phase is complete when extensions have initialized and at
  least one runtime worker has called /runtime/invocation/next" (AWS docs, Lambda Managed Instances
  execution environment), and from then on Lambda sends the environment invocations; started earlier,
  a new version or a scale-out would answer 503s while the weights load. The wait is bounded by the
  init limit, "the maximum of 130 seconds or the configured function timeout (up to 900 seconds)"
  (ibid.): ``LLMFN_FUNCTION_TIMEOUT_S``, which the stack sets. A model that cannot be ready within it
  never serves: the entry exits with the reason, init fails, and the version never becomes Active
  (``pulumi up`` fails on it). Bake the weights into the image or stream them from S3 at the storage
  limit, and raise the function timeout (README.md, "GPU functions on AWS").
- Anywhere else (an SCF image / web function): :func:`functions.cloud.tencent.entry_web.main` listens on
  ``0.0.0.0:9000`` (``LLMFN_HOST`` / ``LLMFN_PORT`` override it) and answers while the preload runs;
  with ``LLMFN_ROLE=scaler`` it is the scaler's event function. ``HANDLER`` is ignored there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from core.contract import (
    ENV_API_KEY,
    ENV_FUNCTION_TIMEOUT_S,
    ENV_HOST,
    ENV_PORT,
    ENV_READY_WAIT_S,
    LAMBDA_FORWARD_HANDLER,
    LAMBDA_INFERENCE_HANDLER,
    SCF_WEB_MODULE,
)
from core.errors import LlmfnError
from functions.image.forward import LOCAL_HOST, local_port

LAMBDA_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"
LAMBDA_MAX_CONCURRENCY = "AWS_LAMBDA_MAX_CONCURRENCY"  # set by Lambda on Managed Instances
DEFAULT_LAMBDA_HANDLER = LAMBDA_INFERENCE_HANDLER
FORWARD_HANDLER = LAMBDA_FORWARD_HANDLER
SERVER_READY_WAIT_S = "25"  # a request during the preload waits this long for readiness, then 503
MIN_INIT_LIMIT_S = 130.0  # "the maximum of 130 seconds or the configured function timeout"
INIT_MARGIN_S = 5.0  # kept from the init limit to exec the runtime client and reach /next
READY_POLL_S = 0.5


class NotReadyInTime(LlmfnError):
    """The local server was not ready within the init limit, or exited first (the message says which)."""


def init_limit_s(env: dict[str, str] | None = None) -> float:
    """Seconds Lambda Managed Instances give the init phase: max(130, the function timeout)."""
    env = dict(os.environ) if env is None else env
    return max(MIN_INIT_LIMIT_S, float(env.get(ENV_FUNCTION_TIMEOUT_S) or 0))


def wait_until_ready(base_url: str, server: subprocess.Popen[bytes], limit_s: float) -> float:
    """Poll ``base_url``/readyz until it answers 200; returns the seconds waited. Raises
    :class:`NotReadyInTime` when ``server`` exits first or ``limit_s`` passes."""
    import httpx

    key = os.environ.get(ENV_API_KEY)  # with a key, /readyz answers only with it
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    started = time.monotonic()
    while True:
        if server.poll() is not None:
            raise NotReadyInTime(
                f"the inference server exited with code {server.returncode} before it was ready"
            )
        try:
            if httpx.get(base_url + "/readyz", headers=headers, timeout=5.0).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass  # still binding its port
        if time.monotonic() - started > limit_s:
            raise NotReadyInTime(
                f"the model was not ready within {limit_s:.0f} s (the init limit less {INIT_MARGIN_S:.0f} s); "
                "bake the weights into the image or stream them from S3, and raise llmfn:timeoutS "
                "(the init limit is max(130 s, the function timeout))"
            )
        time.sleep(READY_POLL_S)


def lambda_command(handler: str) -> list[str]:
    """The process that speaks Lambda's runtime API for ``handler`` (module.function)."""
    return [sys.executable, "-m", "awslambdaric", handler]


def start_local_server(port: int) -> subprocess.Popen[bytes]:
    """The execution environment's one inference server (the SCF web entry) on 127.0.0.1:``port``."""
    env = {**os.environ, ENV_HOST: LOCAL_HOST, ENV_PORT: str(port)}
    env.setdefault(ENV_READY_WAIT_S, SERVER_READY_WAIT_S)
    for name in (LAMBDA_RUNTIME_API, LAMBDA_MAX_CONCURRENCY):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", SCF_WEB_MODULE], env=env)


def main(argv: list[str] | None = None) -> None:
    """Run as Lambda's runtime client when Lambda started us, else as SCF's web server."""
    args = sys.argv[1:] if argv is None else argv
    if os.environ.get(LAMBDA_RUNTIME_API):
        handler = args[0] if args else DEFAULT_LAMBDA_HANDLER
        if handler == DEFAULT_LAMBDA_HANDLER and os.environ.get(LAMBDA_MAX_CONCURRENCY):
            server = start_local_server(local_port())
            try:
                waited = wait_until_ready(
                    f"http://{LOCAL_HOST}:{local_port()}", server, init_limit_s() - INIT_MARGIN_S
                )
            except NotReadyInTime as failure:
                server.terminate()
                sys.exit(f"llmfn: {failure}")
            print(
                f"llmfn: inference server ready after {waited:.1f} s; starting the runtime client", flush=True
            )
            handler = FORWARD_HANDLER
        command = lambda_command(handler)
        os.execv(command[0], command)  # replaces this process: signals and exit codes go to the client
    from functions.cloud.tencent.entry_web import main as serve_scf

    serve_scf()


if __name__ == "__main__":
    main()
