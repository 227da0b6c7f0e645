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
``published_description``) plus ``frozen=KEY``: ``PublishVersion``'s Description would "override the
description in the function configuration" (Lambda API reference), ``llmfn promote`` finds the stack's
version by its revision, and this resource finds its own by ``KEY`` (:func:`version_key`: the image
reference, the accelerator size and ``frozen_inputs``, a hash of the configuration a version freezes,
computed by the program from its config, infra/README.md "GPU versions"). So:

- a new image or a change of what a version freezes publishes a new version; ``pulumi refresh`` then
  ``pulumi up`` does not (the key never depended on ``LastModified``, which this resource's own
  ``UpdateFunctionConfiguration`` moves);
- ``UpdateFunctionConfiguration`` is skipped when ``$LATEST`` already has the accelerator size;
- a publish interrupted after ``PublishVersion`` (the deployer's ``pulumi up`` killed while the three
  execution environments start) is resumed: the next run finds the version by its key and waits for
  it, instead of publishing (and starting) another one. A version that ended Failed is published again.

Publishing waits up to :data:`PUBLISH_WAIT_S` (35 minutes) for ``PublishedVersionActive``: "Lambda
launches Managed Instances ... and starts three execution environments before marking the function
version ACTIVE" (AWS docs, Lambda Managed Instances scaling), three GPU instances plus a 10 GB image
pull; botocore's own waiter allows 26 minutes, terraform-provider-aws's LMI tests 30.

Pulumi stores this provider in the stack's state as a reference to ``infra.clouds.aws.gpu.accelerator`` (dill
pickles classes of importable modules by reference), and the dynamic provider host imports it from the
installed llmfn package to diff, update or delete. WHEN pulumi-aws has ``Function.accelerator_config``:
first release that removes this resource from the program (with this module still installed: its
delete is a no-op), set ``accelerator_config`` on the function and go back to ``publish=True``; only
then delete this module, or ``pulumi up`` on existing stacks cannot load the provider.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

_INPUTS = (
    "function_name",
    "accelerator_memory_gb",
    "region",
    "endpoint_url",
    "code_ref",
    "frozen_inputs",
)
WAIT_DELAY_S = 5.0  # between GetFunction polls
UPDATE_WAIT_S = 10 * 60  # a configuration update of $LATEST
PUBLISH_WAIT_S = 35 * 60  # a published version's three execution environments (see above)
KEY_FIELD = "frozen="  # the word of the version description that carries version_key


def version_key(code_ref: str, accelerator_memory_gb: int, frozen_inputs: str) -> str:
    """12 hex digits naming what a version freezes: the image, the accelerator size, the rest of the
    configuration (``frozen_inputs``, already a hash). Equal keys: the same version."""
    text = json.dumps([code_ref, int(accelerator_memory_gb), frozen_inputs])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def frozen_inputs_hash(inputs: dict[str, Any]) -> str:
    """sha256 of the configuration a version freezes (JSON, keys sorted), as the program computes it."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _waiter_config(wait_s: float, delay_s: float) -> dict[str, int]:
    delay = max(1, round(delay_s))  # botocore takes whole seconds
    return {"Delay": delay, "MaxAttempts": max(1, math.ceil(wait_s / delay))}


def _keyed_version(client: Any, function_name: str, key: str) -> str | None:
    """The newest version whose description carries ``frozen=key`` and is not Failed, else None."""
    found: list[int] = []
    for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=function_name):
        for entry in page.get("Versions", []):
            words = (entry.get("Description") or "").split()
            if entry["Version"] != "$LATEST" and KEY_FIELD + key in words:
                found.append(int(entry["Version"]))
    for version in sorted(found, reverse=True):
        state = client.get_function_configuration(FunctionName=function_name, Qualifier=str(version))
        if state.get("State") != "Failed":
            return str(version)
    return None


def apply_accelerator_config(
    function_name: str,
    accelerator_memory_gb: int,
    region: str,
    endpoint_url: str | None = None,
    wait_delay_s: float = WAIT_DELAY_S,
    key: str | None = None,
) -> str:
    """Set ``AcceleratorConfig`` on ``$LATEST`` (unless it has that size) and publish it with the
    function's description plus ``frozen=key``, or resume the version already published with ``key``;
    returns the version number once it is Active.

    Raises botocore's ClientError when Lambda refuses (the message names the parameter) and its
    WaiterError when the version ends Failed or is not Active after :data:`PUBLISH_WAIT_S`.
    """
    import boto3

    client = boto3.client("lambda", region_name=region, endpoint_url=endpoint_url)
    update_wait = _waiter_config(UPDATE_WAIT_S, wait_delay_s)
    version = _keyed_version(client, function_name, key) if key else None
    if version is None:
        client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=update_wait)
        latest = client.get_function_configuration(FunctionName=function_name)
        size = (latest.get("AcceleratorConfig") or {}).get("AcceleratorMemorySize")
        if size != int(accelerator_memory_gb):
            client.update_function_configuration(
                FunctionName=function_name,
                AcceleratorConfig={"AcceleratorMemorySize": int(accelerator_memory_gb)},
            )
            client.get_waiter("function_updated_v2").wait(
                FunctionName=function_name, WaiterConfig=update_wait
            )
            latest = client.get_function_configuration(FunctionName=function_name)
        description = " ".join([latest.get("Description") or "", *([KEY_FIELD + key] if key else [])]).strip()
        version = str(client.publish_version(FunctionName=function_name, Description=description)["Version"])
    # "When you publish a function version with a capacity provider, Lambda launches Managed Instances
    # ... and starts three execution environments before marking the function version ACTIVE" (AWS
    # docs, Lambda Managed Instances scaling): a version that fails to start fails `pulumi up` here,
    # instead of becoming the alias's target.
    client.get_waiter("published_version_active").wait(
        FunctionName=function_name,
        Qualifier=version,
        WaiterConfig=_waiter_config(PUBLISH_WAIT_S, wait_delay_s),
    )
    return version


class AcceleratorConfigProvider(ResourceProvider):
    """Create/update: apply the accelerator memory and publish; delete: nothing (the function's
    deletion removes its versions)."""

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        key = version_key(
            props["code_ref"], int(props["accelerator_memory_gb"]), props.get("frozen_inputs") or ""
        )
        version = apply_accelerator_config(
            props["function_name"],
            int(props["accelerator_memory_gb"]),
            props["region"],
            props.get("endpoint_url") or None,
            key=key,
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
    published with it. ``code_ref`` (the image reference, by digest) and ``frozen_inputs`` (a hash of the
    configuration a version freezes, :func:`frozen_inputs_hash`) make a new image or any other change
    of what a version freezes publish a new version; nothing else does."""

    version: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        function_name: pulumi.Input[str],
        accelerator_memory_gb: int,
        region: str,
        code_ref: pulumi.Input[str],
        frozen_inputs: pulumi.Input[str],
        endpoint_url: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "function_name": function_name,
            "accelerator_memory_gb": accelerator_memory_gb,
            "region": region,
            "code_ref": code_ref,
            "frozen_inputs": frozen_inputs,
            "endpoint_url": endpoint_url,
            "version": None,
        }
        super().__init__(AcceleratorConfigProvider(), name, props, opts)
