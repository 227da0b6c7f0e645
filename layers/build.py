"""Build a cloud's runtime layer and function package, reproducibly, with a sha256 manifest.

Two artifacts per cloud, written to ``out_dir``:

- ``llmfn-runtime-layer-<cloud>.zip``: third-party dependencies under ``python/``. Lambda adds
  ``/opt/python`` to ``sys.path``. Built from a requirements file (``pip install --target``, for the
  platform's Linux x86_64 wheels) or from a prepared site-packages directory.
- ``llmfn-function-<cloud>.zip``: the modules of ours the handlers import (the import closure of
  :data:`core.contract.LAMBDA_HANDLERS`, :mod:`layers.closure`) at the zip root (the handler's
  import path): no simulator, load generator, local runtime or CI promotion.

Lambda only. SCF runs llmfn as an image, never a zip (:data:`SCF_ZIP_REFUSAL` says why; the stack
refuses ``llmfn:buildDir`` on tencentcloud for the same reason), so ``scf`` is refused here.

``manifest.json`` lists each artifact's sha256, zipped and unzipped bytes and every file's sha256.
Building the same inputs twice gives byte-identical zips and manifest. The sizes are checked against
the platform's limits (:mod:`layers.limits`); a breach raises :class:`PackageTooLargeError`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.contract import CLOUD_SPELLINGS, LAMBDA_HANDLERS, Cloud, handler_module
from core.errors import InputError
from layers.closure import OUR_PACKAGES, ClosureError, import_closure
from layers.limits import LIMITS_BY_CLOUD, ArtifactSize, check_sizes
from layers.zipfiles import ManifestEntry, ZipEntry, collect_tree, file_sha256, write_reproducible_zip

# The clouds that take a zip: Lambda only (SCF_ZIP_REFUSAL says why not SCF).
CLOUDS: tuple[Cloud, ...] = ("aws",)
MANIFEST_NAME = "manifest.json"
LAYER_PYTHON_DIR = "python/"
DEFAULT_PACKAGES = OUR_PACKAGES
# The handlers one function package serves: the inference function's and the scaler's (same zip).
DEFAULT_ENTRY_POINTS: tuple[str, ...] = tuple(LAMBDA_HANDLERS.values())
# The Python each platform's runtime runs.
RUNTIME_PYTHON = {"aws": "3.11"}
# Why there is no SCF zip: SCF's newest Python runtime is Python3.10 (CreateFunction's Runtime list in
# tencentcloud-sdk-python's scf models.py) and llmfn needs >= 3.11; its default PYTHONPATH
# (/var/user:/opt) does not reach a layer's /opt/python either. Inference and scaler run from the image.
SCF_ZIP_REFUSAL = (
    "SCF runs llmfn only as an image: its newest Python runtime is 3.10 and llmfn needs >= 3.11, so a "
    "zip package cannot run there; build the image (llmfn:imageUri) instead"
)
_HANDLER = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
# pip's --target also writes console scripts whose shebang names this machine's Python: not shipped.
_HOST_SPECIFIC_DIRS = frozenset({"bin"})


class LayerBuildError(InputError):
    """The build's input is unusable (missing file, failed pip install); the message says which."""


@dataclass(frozen=True)
class BuildRequest:
    """What to build.

    cloud: ``aws`` (Lambda); SCF takes an image, not a zip (:data:`SCF_ZIP_REFUSAL`).
    out_dir: where the zips and ``manifest.json`` go.
    source_root: the directory holding our packages (the repository root).
    packages: our package directories (relative to ``source_root``) the function package may take
        modules from.
    entry_points: handler strings (``module.function``); the function package holds the import
        closure of their modules within ``packages``.
    requirements: a pip requirements file for the runtime layer, or None.
    site_packages: a prepared directory of installed packages to use instead of pip, or None.
    pip_args: extra pip arguments (e.g. ``--no-index --find-links DIR`` for an offline build).
    python_version: the function runtime's Python whose wheels pip selects; None: the platform's
        newest (:data:`RUNTIME_PYTHON`).
    pip_platform: the wheel platform tag pip selects; None builds for this machine.
    """

    cloud: Cloud
    out_dir: Path
    source_root: Path
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    entry_points: tuple[str, ...] = DEFAULT_ENTRY_POINTS
    requirements: Path | None = None
    site_packages: Path | None = None
    pip_args: tuple[str, ...] = ()
    python_version: str | None = None
    pip_platform: str | None = "manylinux2014_x86_64"


@dataclass(frozen=True)
class Artifact:
    """One built zip: role (``function`` or ``runtime_layer``), file name, sha256 and sizes in bytes."""

    role: str
    file: str
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    files: list[ManifestEntry] = field(default_factory=list)


@dataclass(frozen=True)
class BuildManifest:
    """The build's outputs, as written to ``manifest.json``."""

    cloud: Cloud
    artifacts: list[Artifact]

    def artifact(self, role: str) -> Artifact | None:
        """The artifact with this role, or None when the build has none."""
        return next((a for a in self.artifacts if a.role == role), None)

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys, no timestamps)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def _check_request(request: BuildRequest) -> None:
    if CLOUD_SPELLINGS.get(request.cloud) == "tencent":
        raise LayerBuildError(f"cloud {request.cloud!r}: {SCF_ZIP_REFUSAL}")
    if request.cloud not in CLOUDS:
        raise LayerBuildError(f"cloud must be one of {', '.join(CLOUDS)}, got {request.cloud!r}")
    for handler in request.entry_points:
        if not _HANDLER.fullmatch(handler):
            raise LayerBuildError(
                f"entry point {handler!r} must be module.function, e.g. {LAMBDA_HANDLERS['inference']}"
            )
    if request.requirements is not None and request.site_packages is not None:
        raise LayerBuildError("give either a requirements file or a prepared site-packages dir, not both")
    if request.requirements is not None and not request.requirements.is_file():
        raise LayerBuildError(f"requirements file {str(request.requirements)!r} does not exist")
    if request.site_packages is not None and not request.site_packages.is_dir():
        raise LayerBuildError(f"site-packages dir {str(request.site_packages)!r} is not a directory")
    for package in request.packages:
        if not (request.source_root / package / "__init__.py").is_file():
            raise LayerBuildError(
                f"package {package!r} not found under {str(request.source_root)!r} (no __init__.py)"
            )


def pip_install_command(request: BuildRequest, target: Path) -> list[str]:
    """The ``pip install --target`` command line that stages the runtime layer's dependencies."""
    assert request.requirements is not None
    command = [sys.executable, "-m", "pip", "install", "--target", str(target)]
    command += ["--requirement", str(request.requirements), "--no-compile", "--disable-pip-version-check"]
    command += ["--no-input", "--quiet"]
    if request.pip_platform is not None:
        command += ["--platform", request.pip_platform, "--implementation", "cp"]
        python_version = request.python_version or RUNTIME_PYTHON[request.cloud]
        command += ["--python-version", python_version, "--only-binary=:all:"]
    return command + list(request.pip_args)


def _stage_dependencies(request: BuildRequest, staging: Path) -> Path | None:
    """The directory holding the layer's installed packages, or None when the build has no layer."""
    if request.site_packages is not None:
        return request.site_packages
    if request.requirements is None:
        return None
    completed = subprocess.run(pip_install_command(request, staging), capture_output=True, text=True)
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        raise LayerBuildError(
            f"pip could not install {str(request.requirements)!r}: " + " | ".join(detail[-5:])
        )
    return staging


def _layer_entries(site_packages: Path) -> list[ZipEntry]:
    entries = collect_tree(site_packages, prefix=LAYER_PYTHON_DIR)
    return [
        e
        for e in entries
        if e.arcname.removeprefix(LAYER_PYTHON_DIR).split("/")[0] not in _HOST_SPECIFIC_DIRS
    ]


def _function_entries(request: BuildRequest) -> list[ZipEntry]:
    modules = [handler_module(handler) for handler in request.entry_points]
    try:
        files = import_closure(request.source_root, modules, request.packages)
    except ClosureError as exc:
        raise LayerBuildError(f"entry point: {exc}") from exc
    for module in modules:
        path = module.replace(".", "/")
        if not {f"{path}.py", f"{path}/__init__.py"} & set(files):
            raise LayerBuildError(
                f"entry point module {module!r} is not in our packages ({', '.join(request.packages)})"
            )
    return [ZipEntry(arcname=name, source=request.source_root / name) for name in files]


def _write_artifact(role: str, name: str, entries: list[ZipEntry], out_dir: Path) -> Artifact:
    path = out_dir / name
    files = write_reproducible_zip(entries, path)
    return Artifact(
        role=role,
        file=name,
        sha256=file_sha256(path),
        zipped_bytes=path.stat().st_size,
        unzipped_bytes=sum(f.size for f in files),
        files=files,
    )


def build_packages(request: BuildRequest, check_limits: bool = True) -> BuildManifest:
    """Build the function package (and the runtime layer when dependencies are given); write the manifest.

    Raises LayerBuildError on unusable input and, with ``check_limits``, PackageTooLargeError (both
    ValueError) when the artifacts together break the platform's size limits; the zips stay on disk.
    """
    _check_request(request)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmfn-layer-") as tmp:
        staging = Path(tmp)
        (staging / "deps").mkdir()
        artifacts = [
            _write_artifact(
                "function",
                f"llmfn-function-{request.cloud}.zip",
                _function_entries(request),
                request.out_dir,
            )
        ]
        site_packages = _stage_dependencies(request, staging / "deps")
        if site_packages is not None:
            artifacts.append(
                _write_artifact(
                    "runtime_layer",
                    f"llmfn-runtime-layer-{request.cloud}.zip",
                    _layer_entries(site_packages),
                    request.out_dir,
                )
            )
    manifest = BuildManifest(cloud=request.cloud, artifacts=artifacts)
    (request.out_dir / MANIFEST_NAME).write_text(manifest.to_json())
    if check_limits:
        check_sizes(artifact_sizes(manifest.artifacts), LIMITS_BY_CLOUD[request.cloud])
    return manifest


def artifact_sizes(artifacts: Sequence[Artifact]) -> list[ArtifactSize]:
    """The sizes the limit check needs, one per artifact."""
    return [ArtifactSize(a.file, a.zipped_bytes, a.unzipped_bytes) for a in artifacts]


def read_manifest(build_dir: Path) -> BuildManifest:
    """Load ``manifest.json`` from a build directory and check every zip it names is there, unchanged.

    Raises LayerBuildError naming the missing or modified file.
    """
    path = build_dir / MANIFEST_NAME
    if not path.is_file():
        raise LayerBuildError(f"no {MANIFEST_NAME} in {str(build_dir)!r}: run `llmfn layer build` first")
    raw = json.loads(path.read_text())
    artifacts = [
        Artifact(**{**a, "files": [ManifestEntry(**f) for f in a["files"]]}) for a in raw["artifacts"]
    ]
    for artifact in artifacts:
        zip_path = build_dir / artifact.file
        if not zip_path.is_file():
            raise LayerBuildError(f"{str(zip_path)!r} named in {MANIFEST_NAME} is missing: rebuild")
        if file_sha256(zip_path) != artifact.sha256:
            raise LayerBuildError(f"{str(zip_path)!r} does not match its sha256 in {MANIFEST_NAME}: rebuild")
    return BuildManifest(cloud=raw["cloud"], artifacts=artifacts)
