"""The function image's entry command: ``python -m functions.image.entry [HANDLER]``.

One image serves both clouds; the entry command tells them apart by the environment:

- Lambda (the runtime sets ``AWS_LAMBDA_RUNTIME_API``): the Lambda runtime interface client
  (``awslambdaric``) fetches invocations from the runtime API and runs ``HANDLER`` (the image's ``CMD``,
  ``functions.entry.aws_lambda.handler``; the scaler function's ``image_config.command`` names
  ``functions.scaler.handler.lambda_handler`` instead).
- Anywhere else (an SCF image / web function): :func:`functions.entry.scf_web.main` listens on
  ``0.0.0.0:9000`` (``LLMFN_HOST`` / ``LLMFN_PORT`` override it) and answers while the preload runs;
  with ``LLMFN_ROLE=scaler`` it is the scaler's event function. ``HANDLER`` is ignored there.
"""

from __future__ import annotations

import os
import sys

LAMBDA_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"
DEFAULT_LAMBDA_HANDLER = "functions.entry.aws_lambda.handler"


def lambda_command(handler: str) -> list[str]:
    """The process that speaks Lambda's runtime API for ``handler`` (module.function)."""
    return [sys.executable, "-m", "awslambdaric", handler]


def main(argv: list[str] | None = None) -> None:
    """Run as Lambda's runtime client when Lambda started us, else as SCF's web server."""
    args = sys.argv[1:] if argv is None else argv
    if os.environ.get(LAMBDA_RUNTIME_API):
        command = lambda_command(args[0] if args else DEFAULT_LAMBDA_HANDLER)
        os.execv(command[0], command)  # replaces this process: signals and exit codes go to the client
    from functions.entry.scf_web import main as serve_scf

    serve_scf()


if __name__ == "__main__":
    main()
