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
when the tag stays. Tencent: a namespace and repository in the TCR Enterprise instance
``llmfn:registryId`` (created by the stack), a long-lived TCR token for the push, and the reference
``<repository>:<tag>@sha256:...`` that SCF image functions take.
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


TCR_NAMESPACE_MAX = 30  # tcr.Namespace name: "Valid length is [2~30]" (tencentcloud-iac-pulumi 0.2.3)


def parse_image_build(
    raw: Any, cloud: str, stack_name: str | None = None
) -> tuple[ImageBuild | None, list[str]]:
    """``llmfn:image`` validated for ``cloud`` (and the stack's ``llmfn:name``, which names the TCR
    namespace on tencentcloud), or the problems naming each bad key."""
    build, problems = parse_submap(ImageBuild, raw, IMAGE_KEY, _WHAT)
    if build is not None and cloud == "tencentcloud" and stack_name and len(stack_name) > TCR_NAMESPACE_MAX:
        too_long = (
            f"llmfn:name = {stack_name!r} is {len(stack_name)} characters: with {IMAGE_KEY} on tencentcloud it "
            f"names the TCR namespace the stack creates, which allows 2-{TCR_NAMESPACE_MAX}; use a shorter name"
        )
        problems = [*problems, too_long]
    if build is not None and cloud == "tencentcloud" and build.registry_server is None:
        problems = [
            f"{IMAGE_KEY}.registryServer is required with llmfn:cloud = tencentcloud: the TCR instance's domain"
        ]
    if build is not None and cloud == "aws" and build.registry_server is not None:
        problems = [
            f"{IMAGE_KEY}.registryServer is for tencentcloud; with llmfn:cloud = aws the stack creates an ECR repository"
        ]
    return (build if not problems else None), problems


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


def _image(
    name: str,
    build: ImageBuild,
    repository: pulumi.Input[str],
    registry: dict[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> Any:
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


def ecr_image(
    name: str, stack_name: str, build: ImageBuild, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """Build and push to a new ECR repository; the function's ``image_uri`` (``<repository>@<digest>``)."""
    import pulumi_aws as aws

    repository = aws.ecr.Repository(
        f"{name}-repository",
        name=f"{stack_name}-serve",
        image_tag_mutability="MUTABLE",
        force_delete=True,
        opts=opts,
    )
    token = aws.ecr.get_authorization_token_output(
        registry_id=repository.registry_id,
        opts=pulumi.InvokeOutputOptions(parent=opts.parent, provider=opts.provider),
    )
    registry = {
        "address": repository.repository_url.apply(lambda url: url.split("/", 1)[0]),
        "username": token.user_name,
        "password": pulumi.Output.secret(token.password),
    }
    image = _image(name, build, repository.repository_url, registry, opts)
    return pulumi.Output.concat(repository.repository_url, "@", image.digest)


def tcr_image(
    name: str, stack_name: str, registry_id: str, build: ImageBuild, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """Build and push to a namespace/repository created in TCR instance ``registry_id``; the
    function's ``image_uri`` (``<server>/<namespace>/<repository>:<tag>@<digest>``)."""
    from tencentcloud_iac_pulumi import tcr

    assert build.registry_server is not None
    namespace = tcr.Namespace(f"{name}-namespace", instance_id=registry_id, name=stack_name, opts=opts)
    repository = tcr.Repository(
        f"{name}-repository",
        instance_id=registry_id,
        namespace_name=namespace.name,
        name="serve",
        brief_desc="llmfn function image",
        opts=opts,
    )
    token = tcr.Token(
        f"{name}-push-token", instance_id=registry_id, description="llmfn image push", opts=opts
    )
    address = pulumi.Output.concat(build.registry_server, "/", namespace.name, "/", repository.name)
    registry = {
        "address": build.registry_server,
        "username": token.user_name,
        "password": pulumi.Output.secret(token.token),
    }
    image = _image(name, build, address, registry, opts)
    return pulumi.Output.concat(address, ":", build.tag, "@", image.digest)
