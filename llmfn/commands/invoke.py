"""``llmfn invoke``: send one prompt to a local (``llmfn dev``) or deployed endpoint, print the answer."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from core.errors import InputError

console = Console(stderr=True)


def invoke(
    prompt: str = typer.Argument(..., help="The user message."),
    url: str = typer.Option(
        "http://127.0.0.1:8080", "--url", help="Endpoint base URL (with or without /v1)."
    ),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print tokens as they arrive."),
    model: str | None = typer.Option(
        None, "--model", help="Model id; default: the first one /v1/models lists."
    ),
    max_tokens: int = typer.Option(128, "--max-tokens", help="Most tokens to generate."),
    temperature: float | None = typer.Option(
        None, "--temperature", help="Sampling temperature (server default)."
    ),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the whole answer."),
) -> None:
    """Ask an OpenAI-compatible endpoint (API key from LLMFN_API_KEY or OPENAI_API_KEY)."""
    import asyncio

    import httpx

    from llmfn.local.client import api_key_from_env, auth_headers, chat, first_model, v1_base

    if max_tokens < 1:
        raise InputError(f"--max-tokens must be >= 1, got {max_tokens}")
    base = v1_base(url)
    headers = auth_headers(api_key_from_env())

    def show(delta: str) -> None:
        sys.stdout.write(delta)
        sys.stdout.flush()

    async def run() -> int:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
            model_id = model or await first_model(client, base, headers)
            body: dict[str, object] = {
                "model": model_id,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "stream": stream,
            }
            if stream:
                body["stream_options"] = {"include_usage": True}
            if temperature is not None:
                body["temperature"] = temperature
            result = await chat(client, base, body, headers, on_text=show)
        sys.stdout.write("\n")
        if result.error is not None:
            console.print(
                f"[bold red]error {result.status}:[/bold red] {result.error}", highlight=False, soft_wrap=True
            )
            return 1
        routed = result.headers
        console.print(
            f"[dim]{model_id} | ttft {result.ttft_s or 0:.3f} s | total {result.e2e_s:.3f} s | "
            f"{result.completion_tokens} tokens | worker {routed.get('x-llmfn-worker', '-')} "
            f"tier {routed.get('x-llmfn-tier', '-')} cold start {routed.get('x-llmfn-cold-start', '-')}[/dim]",
            highlight=False,
        )
        return 0

    try:
        code = asyncio.run(run())
    except httpx.TransportError as exc:
        console.print(
            f"[bold red]error:[/bold red] cannot reach {base} ({exc!s}); is `llmfn dev` running?",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    except RuntimeError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("invoke")(invoke)
