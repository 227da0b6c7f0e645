"""AWS's image registry: the stack's ECR repository, pushed to with ECR's authorization token
(``llmfn:image`` on aws; the schema and the build are ``infra.image``'s)."""

from __future__ import annotations

import pulumi

from infra.image import ImageBuild, build_and_push


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
    image = build_and_push(name, build, repository.repository_url, registry, opts)
    return pulumi.Output.concat(repository.repository_url, "@", image.digest)
