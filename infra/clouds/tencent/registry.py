"""Tencent Cloud's image registry: a namespace and repository the stack creates in the TCR Enterprise
instance ``llmfn:registryId``, pushed to with a TCR token (``llmfn:image`` on tencentcloud; the schema
and the build are ``infra.image``'s)."""

from __future__ import annotations

import pulumi

from infra.image import ImageBuild, build_and_push

TCR_NAMESPACE_MAX = 30  # tcr.Namespace name: "Valid length is [2~30]" (tencentcloud-iac-pulumi 0.2.3)


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
    image = build_and_push(name, build, address, registry, opts)
    return pulumi.Output.concat(address, ":", build.tag, "@", image.digest)
