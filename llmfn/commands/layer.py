"""``llmfn layer build``: the function package and runtime layer for Lambda, reproducibly.

SCF takes an image, never a zip: ``--cloud scf`` is refused with the reason (``layers.build.SCF_ZIP_REFUSAL``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from core.errors import InputError


def register(app: typer.Typer) -> None:
    """Attach the ``layer`` command group to the ``llmfn`` app."""
    layer_app = typer.Typer(
        help="Build function packages and layers for Lambda (SCF deploys an image).", no_args_is_help=True
    )

    @layer_app.command("build")
    def build(
        cloud: str = typer.Option(
            ..., "--cloud", help="Target platform: aws (Lambda). SCF runs an image, not a zip."
        ),
        requirements: Path | None = typer.Option(
            None, "--requirements", help="pip requirements file for the runtime layer."
        ),
        extra: list[str] = typer.Option(
            [], "--extra", help="Take the layer's requirements from this pyproject extra (repeatable)."
        ),
        site_packages: Path | None = typer.Option(
            None, "--site-packages", help="Use this prepared directory of installed packages as the layer."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Output directory (default: build/layers/CLOUD)."
        ),
        pip_arg: list[str] = typer.Option(
            [], "--pip-arg", help="Extra pip argument, e.g. --pip-arg=--no-index (repeatable)."
        ),
        python_version: str | None = typer.Option(
            None, "--python-version", help="The runtime's Python (default: aws 3.11)."
        ),
        native: bool = typer.Option(
            False, "--native", help="Install wheels for this machine instead of manylinux x86_64."
        ),
        handler: list[str] = typer.Option(
            [],
            "--handler",
            help="An entry point (module.function) the package must run; it packs their imports only "
            "(repeatable; default: the inference and scaler handlers).",
        ),
    ) -> None:
        """Build the function package (our code) and the runtime layer (dependencies) with a sha256 manifest."""
        from rich.console import Console
        from rich.table import Table

        import layers
        from core.contract import CLOUD_SPELLINGS
        from layers.build import SCF_ZIP_REFUSAL
        from layers.limits import format_mb
        from layers.requirements import requirements_from_pyproject

        if CLOUD_SPELLINGS.get(cloud) == "tencent":
            raise InputError(f"--cloud {cloud}: {SCF_ZIP_REFUSAL}")
        if cloud not in layers.CLOUDS:
            raise InputError(f"--cloud must be one of {', '.join(layers.CLOUDS)}, got {cloud!r}")
        source_root = Path(layers.__file__).resolve().parent.parent
        out_dir = out if out is not None else Path("build") / "layers" / cloud
        if extra:
            if requirements is not None or site_packages is not None:
                raise InputError("--extra excludes --requirements and --site-packages: give one layer source")
            out_dir.mkdir(parents=True, exist_ok=True)
            requirements = out_dir / "requirements.txt"
            lines = requirements_from_pyproject(source_root / "pyproject.toml", extra)
            requirements.write_text("".join(f"{line}\n" for line in lines))
        request = layers.BuildRequest(
            cloud=cloud,  # type: ignore[arg-type]  # validated by build_packages
            out_dir=out_dir,
            source_root=source_root,
            requirements=requirements,
            site_packages=site_packages,
            pip_args=tuple(pip_arg),
            python_version=python_version,
            pip_platform=None if native else "manylinux2014_x86_64",
            **({"entry_points": tuple(handler)} if handler else {}),
        )
        manifest = layers.build_packages(request, check_limits=False)
        limits = layers.LIMITS_BY_CLOUD[cloud]
        table = Table(title=f"{limits.display_name} build in {out_dir}")
        for column in ("artifact", "sha256", "zipped", "unzipped", "files"):
            table.add_column(column, justify="left" if column in ("artifact", "sha256") else "right")
        for artifact in manifest.artifacts:
            table.add_row(
                artifact.file,
                artifact.sha256[:16],
                format_mb(artifact.zipped_bytes),
                format_mb(artifact.unzipped_bytes),
                str(len(artifact.files)),
            )
        console = Console()
        console.print(table)
        console.print(f"function package: the modules of ours that {', '.join(request.entry_points)} import")
        console.print(
            f"limits: {format_mb(limits.direct_upload_zip_bytes)} per zip uploaded directly, "
            f"{format_mb(limits.unzipped_total_bytes)} unzipped with layers; manifest: {out_dir / layers.MANIFEST_NAME}"
        )
        problems = layers.size_problems(layers.artifact_sizes(manifest.artifacts), limits)
        if problems:
            raise layers.PackageTooLargeError("; ".join(problems))

    app.add_typer(layer_app, name="layer")
