"""``llmfn image build [--push]``: the function image (functions/image/Dockerfile) for users who build
outside Pulumi (CI), printing the digest to deploy (``llmfn:imageUri = REPOSITORY@DIGEST``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import typer

from core.errors import InputError

DOCKERFILE = Path("functions") / "image" / "Dockerfile"
PLATFORM = "linux/amd64"  # GPU instances (G6, SCF GPU) are x86_64
DIGEST_KEY = "containerimage.digest"  # in buildx's --metadata-file


class DockerUnavailableError(InputError):
    """docker or its buildx plugin is missing (a one-line user error, exit 2)."""


def docker_with_buildx() -> str:
    """The docker executable when it has buildx; else DockerUnavailableError saying what to install."""
    docker = shutil.which("docker")
    if docker is None:
        raise DockerUnavailableError(
            "docker is not installed (not on PATH): `llmfn image build` needs docker with buildx; "
            "or let the stack build the image (llmfn:image)"
        )
    probe = subprocess.run([docker, "buildx", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        raise DockerUnavailableError(
            "docker has no buildx plugin (`docker buildx version` failed): install docker-buildx-plugin"
        )
    return docker


def build_command(
    docker: str, context: Path, dockerfile: Path, target: str, tag: str, push: bool, metadata: Path
) -> list[str]:
    """``docker buildx build`` for linux/amd64, pushed or loaded into the local image store."""
    return [
        docker, "buildx", "build", "--file", str(dockerfile), "--target", target, "--platform", PLATFORM,
        "--tag", tag, "--metadata-file", str(metadata), "--push" if push else "--load", str(context),
    ]  # fmt: skip


def register(app: typer.Typer) -> None:
    """Attach the ``image`` command group to the ``llmfn`` app."""
    image_app = typer.Typer(
        help="Build the function image (SCF and Lambda, GPU or CPU).", no_args_is_help=True
    )

    @image_app.command("build")
    def build(
        tag: str = typer.Option(
            ..., "--tag", help="REPOSITORY:TAG, e.g. 1234.dkr.ecr.us-east-1.amazonaws.com/llmfn:0.1"
        ),
        target: str = typer.Option("gpu", "--target", help="gpu (CUDA + vLLM) or cpu (slim, CPU torch)."),
        push: bool = typer.Option(
            False, "--push", help="Push to the registry (log in first) and print the digest."
        ),
        context: Path = typer.Option(Path("."), "--context", help="The repository root (build context)."),
    ) -> None:
        """Build functions/image/Dockerfile for linux/amd64 and print its digest (and what to deploy)."""
        if target not in ("gpu", "cpu"):
            raise InputError(f"--target must be gpu or cpu, got {target!r}")
        if ":" not in tag.rsplit("/", 1)[-1] or tag.endswith(":"):
            raise InputError(f"--tag must be REPOSITORY:TAG, got {tag!r}")
        dockerfile = context / DOCKERFILE
        if not dockerfile.is_file():
            raise FileNotFoundError(
                f"--context {str(context)!r} has no {DOCKERFILE}: run from the repository root"
            )
        docker = docker_with_buildx()
        with tempfile.TemporaryDirectory() as tmp:
            metadata = Path(tmp) / "metadata.json"
            result = subprocess.run(build_command(docker, context, dockerfile, target, tag, push, metadata))
            if result.returncode != 0:
                typer.echo(f"error: docker buildx build failed (exit {result.returncode})", err=True)
                raise typer.Exit(1)
            digest = json.loads(metadata.read_text()).get(DIGEST_KEY, "")
        typer.echo(f"digest: {digest}")
        if push:
            repository = tag.rsplit(":", 1)[0]
            typer.echo(f"imageUri: {repository}@{digest}   (llmfn:imageUri; SCF takes {tag}@{digest})")

    app.add_typer(image_app, name="image")
