"""The function image built and pushed by the stack (``llmfn:image``), or none when ``llmfn:imageUri`` is given.

``llmfn:image`` is a map::

    llmfn:image:
      target: gpu                               # gpu (CUDA + vLLM) or cpu, the stages of the Dockerfile
      dockerfile: functions/image/Dockerfile    # relative to the project directory (Pulumi.yaml's)
      context: .
      tag: "0.1.0"
      registryServer: myreg.tencentcloudcr.com  # Tencent only: the TCR instance's domain

AWS: an ECR repository created by the stack, the registry credentials from ECR's authorization token,
and a ``pulumi_docker_build.Image`` pushed there for linux/amd64; the function then references the
pushed digest (``<repository>@sha256:...``), so a rebuild with new content deploys a new image even
when the tag stays (``infra.clouds.aws.registry``). Tencent: a namespace and repository in the TCR Enterprise instance
``llmfn:registryId`` (created by the stack), a long-lived TCR token for the push, and the reference
``<repository>:<tag>@sha256:...`` that SCF image functions take (``infra.clouds.tencent.registry``).
This module holds what both share: the map's schema, the project-relative paths and the build.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, field_validator

from core.errors import InputError
from infra.submap import camel, parse_submap

IMAGE_KEY = "llmfn:image"
DOCKERFILE = "functions/image/Dockerfile"
IMAGE_PLATFORM = "linux/amd64"  # GPU instances (G6, SCF GPU) are x86_64
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # the OCI distribution spec's tag grammar
_SERVER = re.compile(r"^[a-z0-9][a-z0-9.-]+\.[a-z]{2,}$")
_WHAT = "target (gpu|cpu), dockerfile, context, tag; on tencentcloud also registryServer"


class ImageBuild(BaseModel):
    """What to build (Dockerfile stage ``target``) and where to push it (``tag``; TCR ``registry_server``)."""

    model_config = ConfigDict(alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True)

    target: Literal["gpu", "cpu"] = "gpu"
    dockerfile: str = DOCKERFILE
    context: str = "."
    tag: str = "latest"
    registry_server: str | None = None

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not _TAG.match(value):
            raise InputError(
                "must be a docker tag: letters, digits, '_', '.', '-', at most 128, not starting with . or -"
            )
        return value

    @field_validator("registry_server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        if value is not None and not _SERVER.match(value):
            raise InputError("must be the TCR instance's domain, e.g. myreg.tencentcloudcr.com")
        return value


def parse_image_build(raw: Any) -> tuple[ImageBuild | None, list[str]]:
    """``llmfn:image`` validated as a map, or the problems naming each bad key; each cloud's config
    rules (``infra.clouds.<cloud>.config``) add what its registry needs."""
    return parse_submap(ImageBuild, raw, IMAGE_KEY, _WHAT)


def project_path(path: str) -> str:
    """``path`` (``llmfn:image.dockerfile`` / ``.context``, ``llmfn:buildDir``, ``llmfn:trafficTrace``,
    ``llmfn:profile``) relative to the project directory, where
    Pulumi.yaml is. Not the working directory: with ``main: infra/`` Pulumi runs the program in infra/
    ("if maininfo.IsDir() { pwd = main }", pulumi/pulumi pkg/engine/project.go, getPwdMain)."""
    if os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(project_root(), path))


def project_root() -> str:
    """The directory of Pulumi.yaml as the engine passes it (an absolute path); outside a Pulumi run
    the SDK's placeholder ("root_directory") is no directory, so the working directory stands in."""
    root = pulumi.get_root_directory()
    return root if root and os.path.isabs(root) else os.getcwd()


def build_and_push(
    name: str,
    build: ImageBuild,
    repository: pulumi.Input[str],
    registry: dict[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> Any:
    """The ``pulumi_docker_build.Image`` of ``build``, tagged ``<repository>:<tag>`` and pushed to
    ``registry`` (``address``, ``username``, ``password``) for :data:`IMAGE_PLATFORM`."""
    import pulumi_docker_build as docker_build

    return docker_build.Image(
        f"{name}-image",
        context={"location": project_path(build.context)},
        dockerfile={"location": project_path(build.dockerfile)},
        target=build.target,
        platforms=[IMAGE_PLATFORM],
        tags=[pulumi.Output.concat(repository, ":", build.tag)],
        push=True,
        registries=[registry],
        opts=opts,
    )
