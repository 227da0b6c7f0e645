"""The function image's entry command: ``python -m functions.image.entry [HANDLER]``.

One image serves both clouds; the entry command tells them apart by the environment:

- Lambda (the runtime sets ``AWS_LAMBDA_RUNTIME_API``): the Lambda runtime interface client
  (``awslambdaric``) fetches invocations from the runtime API and runs ``HANDLER`` (the image's ``CMD``,
  ``functions.entry.aws_lambda.handler``; the scaler function's ``image_config.command`` names
  ``functions.scaler.handler.lambda_handler`` instead). On Lambda Managed Instances
  (``AWS_LAMBDA_MAX_CONCURRENCY`` set: the client forks that many workers) the inference handler is
  replaced by one inference server on 127.0.0.1 and :mod:`functions.image.forward` in the workers, so
  the environment loads the model once (see that module).
- Anywhere else (an SCF image / web function): :func:`functions.entry.scf_web.main` listens on
  ``0.0.0.0:9000`` (``LLMFN_HOST`` / ``LLMFN_PORT`` override it) and answers while the preload runs;
  with ``LLMFN_ROLE=scaler`` it is the scaler's event function. ``HANDLER`` is ignored there.
"""

from __future__ import annotations

import os
import subprocess
import sys

from functions.contract import (
    ENV_HOST,
    ENV_PORT,
    ENV_READY_WAIT_S,
    LAMBDA_FORWARD_HANDLER,
    LAMBDA_INFERENCE_HANDLER,
    SCF_WEB_MODULE,
)
from functions.image.forward import LOCAL_HOST, local_port

LAMBDA_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"
LAMBDA_MAX_CONCURRENCY = "AWS_LAMBDA_MAX_CONCURRENCY"  # set by Lambda on Managed Instances
DEFAULT_LAMBDA_HANDLER = LAMBDA_INFERENCE_HANDLER
FORWARD_HANDLER = LAMBDA_FORWARD_HANDLER
SERVER_READY_WAIT_S = "25"  # a request during the preload waits this long for readiness, then 503


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
            start_local_server(local_port())
            handler = FORWARD_HANDLER
        command = lambda_command(handler)
        os.execv(command[0], command)  # replaces this process: signals and exit codes go to the client
    from functions.entry.scf_web import main as serve_scf

    serve_scf()


if __name__ == "__main__":
    main()
