"""Reproducible builds of function layers and packages (zip + sha256 manifest), per cloud's layout.

Imports of ours only :mod:`core` (the entry points and cloud names it packs for, the errors);
``infra/`` and the ``llmfn layer build`` command use it.
"""

from layers.build import (
    CLOUDS,
    MANIFEST_NAME,
    Artifact,
    BuildManifest,
    BuildRequest,
    LayerBuildError,
    artifact_sizes,
    build_packages,
    read_manifest,
)
from layers.limits import LIMITS_BY_CLOUD, PackageTooLargeError, PlatformLimits, check_sizes, size_problems

__all__ = [
    "CLOUDS",
    "LIMITS_BY_CLOUD",
    "MANIFEST_NAME",
    "Artifact",
    "BuildManifest",
    "BuildRequest",
    "LayerBuildError",
    "PackageTooLargeError",
    "PlatformLimits",
    "artifact_sizes",
    "build_packages",
    "check_sizes",
    "read_manifest",
    "size_problems",
]
