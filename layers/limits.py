"""Package-size limits of each platform, and the check that reports a build against them.

Sizes are bytes; MB here means MiB (2**20 bytes), as the platforms count them.

Sources:
- AWS Lambda (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): a .zip
  uploaded directly is at most 50 MB; function code plus all its layers, unzipped, at most 250 MB;
  a container image at most 10 GB (uncompressed); at most 5 layers per function.

Tencent Cloud SCF has no entry: llmfn deploys it as an image only (``layers.build.SCF_ZIP_REFUSAL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InputError

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class PlatformLimits:
    """What one platform accepts for a zip-deployed function (bytes)."""

    cloud: str
    display_name: str
    direct_upload_zip_bytes: int
    unzipped_total_bytes: int
    max_layers: int
    upload_hint: str


LAMBDA_LIMITS = PlatformLimits(
    cloud="aws",
    display_name="AWS Lambda",
    direct_upload_zip_bytes=50 * MB,
    unzipped_total_bytes=250 * MB,
    max_layers=5,
    upload_hint="upload larger zips through S3, or deploy a container image (up to 10 GB)",
)
LIMITS_BY_CLOUD: dict[str, PlatformLimits] = {"aws": LAMBDA_LIMITS}


class PackageTooLargeError(InputError):
    """A built package breaks a platform size limit; the message names the artifact and the limit."""


@dataclass(frozen=True)
class ArtifactSize:
    """One built zip: its name, zipped and unzipped bytes."""

    name: str
    zipped_bytes: int
    unzipped_bytes: int


def format_mb(size_bytes: int) -> str:
    """``12.3 MB`` (MiB) for a byte count."""
    return f"{size_bytes / MB:.1f} MB"


def size_problems(artifacts: Sequence[ArtifactSize], limits: PlatformLimits) -> list[str]:
    """Every limit the artifacts (one function's package and layers together) break, as sentences."""
    problems = [
        f"{a.name} is {format_mb(a.zipped_bytes)} zipped, over {limits.display_name}'s "
        f"{format_mb(limits.direct_upload_zip_bytes)} direct-upload limit ({limits.upload_hint})"
        for a in artifacts
        if a.zipped_bytes > limits.direct_upload_zip_bytes
    ]
    total_unzipped = sum(a.unzipped_bytes for a in artifacts)
    if total_unzipped > limits.unzipped_total_bytes:
        problems.append(
            f"code and layers unzip to {format_mb(total_unzipped)}, over {limits.display_name}'s "
            f"{format_mb(limits.unzipped_total_bytes)} limit for a function with its layers "
            "(move the model weights out of the package; load them at start-up instead)"
        )
    return problems


def check_sizes(artifacts: Sequence[ArtifactSize], limits: PlatformLimits) -> None:
    """Raise :class:`PackageTooLargeError` listing every broken limit; return quietly when all fit."""
    problems = size_problems(artifacts, limits)
    if problems:
        raise PackageTooLargeError("; ".join(problems))
