"""The ``llmfn`` command: one Typer app, each subcommand in its own module under ``llmfn.commands``.

Errors caused by the user's input (bad flags, config, files, checkpoints) are printed as one
clear line and exit with status 2; set ``LLMFN_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from core.contract import ENV_DEBUG
from llmfn import __version__

app = typer.Typer(
    name="llmfn",
    help="Run LLM inference on serverless GPU functions (Tencent Cloud SCF, AWS Lambda) cheaply and fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"llmfn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version_callback, is_eager=True
    ),
) -> None:
    """Deploy, preload, serve, scale, plan and promote LLMs on serverless GPU functions."""


def _register_commands() -> None:
    """Attach every subcommand module; each exposes ``register(app)`` and imports heavy deps lazily."""
    from llmfn.commands import COMMAND_MODULES

    for module in COMMAND_MODULES:
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: usage errors are Typer's, input errors one clear line (exit 2).

    Input errors are the roots in ``llmfn.errors.USER_ERRORS``; ``llmfn.errors.cli_message`` words them
    with the flags of the subcommand that ran.
    """
    from llmfn.errors import USER_ERRORS, cli_message, command_of

    try:
        app(args=argv, prog_name="llmfn")  # standalone: Typer prints usage errors and exits
    except USER_ERRORS as exc:
        if os.environ.get(ENV_DEBUG):
            raise
        # the message is the user's data (paths, JSON, "[-8, 49152]"), never rich markup
        err_console.print(
            f"[bold red]error:[/bold red] {escape(cli_message(exc, command_of(argv if argv is not None else sys.argv[1:])))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
