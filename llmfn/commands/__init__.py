"""Subcommands of ``llmfn``. Each module defines ``register(app: typer.Typer) -> None``.

Modules must import their heavy dependencies (torch, boto3, pulumi...) inside the command
function, so that ``llmfn --help`` stays fast and works on the base install.
"""

from __future__ import annotations

from types import ModuleType

from llmfn.commands import dev, image, invoke, layer, load, plan, preload, promote, scale, serve, simulate

COMMAND_MODULES: list[ModuleType] = [
    layer,
    image,
    dev,
    invoke,
    load,
    scale,
    promote,
    preload,
    serve,
    simulate,
    plan,
]
