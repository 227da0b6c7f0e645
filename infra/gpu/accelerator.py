"""``AcceleratorConfig`` on a Lambda function, and the version published with it: a Pulumi dynamic resource.

pulumi-aws 7.51.1 has ``lambda_.CapacityProvider``, ``Function.capacity_provider_config`` and
``lambda_.FunctionScalingConfig`` but not ``AcceleratorConfig`` (botocore 1.44 has it, on CreateFunction
and UpdateFunctionConfiguration). Until the provider catches up this resource sets it through boto3:
it waits for the function's last update to finish, calls ``UpdateFunctionConfiguration`` with
``AcceleratorConfig.AcceleratorMemorySize``, waits again, then publishes a version (a published
version freezes the configuration it was published with, so the function is created with
``publish=False`` and this version is the one the alias and the scaling config use) and waits until
that version is Active.

The version keeps the function's description (``llmfn model-revision=REV``, infra.common's
``published_description``): ``PublishVersion``'s Description would "override the description in the
function configuration" (Lambda API reference), and ``llmfn promote`` finds the stack's version by it.
A new version is published whenever the function changed: a new image (``code_ref``) or any other
configuration change (``function_modified``, the function's ``LastModified``), since with
``publish=False`` nothing else publishes it.

Pulumi stores this provider in the stack's state as a reference to ``infra.gpu.accelerator`` (dill
pickles classes of importable modules by reference), and the dynamic provider host imports it from the
installed llmfn package to diff, update or delete. WHEN pulumi-aws has ``Function.accelerator_config``:
first release that removes this resource from the program (with this module still installed: its
delete is a no-op), set ``accelerator_config`` on the function and go back to ``publish=True``; only
then delete this module, or ``pulumi up`` on existing stacks cannot load the provider.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

_INPUTS = (
    "function_name",
    "accelerator_memory_gb",
    "region",
    "endpoint_url",
    "code_ref",
    "function_modified",
)
WAIT_DELAY_S = 2  # between GetFunction polls while an update is in progress
WAIT_MAX_ATTEMPTS = 300  # 10 minutes: image functions on new capacity take minutes to become active


def apply_accelerator_config(
    function_name: str,
    accelerator_memory_gb: int,
    region: str,
    endpoint_url: str | None = None,
    wait_delay_s: float = WAIT_DELAY_S,
) -> str:
    """Set ``AcceleratorConfig`` on ``$LATEST`` and publish it (with the function's own description);
    returns the new version number.

    Raises botocore's ClientError when Lambda refuses (the message names the parameter).
    """
    import boto3

    client = boto3.client("lambda", region_name=region, endpoint_url=endpoint_url)
    waiter_config = {"Delay": wait_delay_s, "MaxAttempts": WAIT_MAX_ATTEMPTS}
    client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=waiter_config)
    client.update_function_configuration(
        FunctionName=function_name, AcceleratorConfig={"AcceleratorMemorySize": int(accelerator_memory_gb)}
    )
    client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=waiter_config)
    version = str(client.publish_version(FunctionName=function_name)["Version"])
    # "When you publish a function version with a capacity provider, Lambda launches Managed Instances
    # ... and starts three execution environments before marking the function version ACTIVE" (AWS
    # docs, Lambda Managed Instances scaling): a version that fails to start fails `pulumi up` here,
    # instead of becoming the alias's target.
    client.get_waiter("published_version_active").wait(
        FunctionName=function_name, Qualifier=version, WaiterConfig=waiter_config
    )
    return version


class AcceleratorConfigProvider(ResourceProvider):
    """Create/update: apply the accelerator memory and publish; delete: nothing (the function's
    deletion removes its versions)."""

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        version = apply_accelerator_config(
            props["function_name"],
            int(props["accelerator_memory_gb"]),
            props["region"],
            props.get("endpoint_url") or None,
        )
        return {**props, "version": version}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(props)
        return CreateResult(id_=f"{props['function_name']}:{outs['version']}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in _INPUTS if olds.get(k) != news.get(k)]
        replaces = [k for k in changed if k in ("function_name", "region")]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class LambdaAcceleratorConfig(Resource):
    """The accelerator memory of a Lambda Managed Instances function, and ``version``: the version
    published with it. ``code_ref`` (the image reference) and ``function_modified`` (the function's
    ``last_modified``) make a new image or any other change of the function publish a new version."""

    version: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        function_name: pulumi.Input[str],
        accelerator_memory_gb: int,
        region: str,
        code_ref: pulumi.Input[str],
        function_modified: pulumi.Input[str],
        endpoint_url: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "function_name": function_name,
            "accelerator_memory_gb": accelerator_memory_gb,
            "region": region,
            "code_ref": code_ref,
            "function_modified": function_modified,
            "endpoint_url": endpoint_url,
            "version": None,
        }
        super().__init__(AcceleratorConfigProvider(), name, props, opts)
