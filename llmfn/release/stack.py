"""What ``--stack NAME`` means: the outputs of that Pulumi stack, saved as JSON.

Save them once per deploy with ``pulumi stack output --json --stack NAME > stack-outputs/NAME.json``
(the default path; ``--outputs FILE`` names another). Keys read (the ones ``infra/`` exports, plus
two it may not): ``functionName``, ``aliasName``, ``endpointUrl``, and optionally ``cloud``
("aws" / "tencent"), ``region``, ``namespace`` (SCF) and ``reservedCapacity`` (AWS GPU stacks:
"execution-environments", the floor being ``MinExecutionEnvironments``). A flag given on the command line wins over
the file; without a file, the flags alone must name the function, alias, cloud and region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.contract import PROVISIONED_CONCURRENCY
from core.errors import InputError
from functions.cloud.connect import CloudTarget, cloud_name

DEFAULT_OUTPUTS_DIR = Path("stack-outputs")


class StackOutputsError(InputError):
    """The stack outputs file is missing a value or is not a JSON object."""


@dataclass(frozen=True)
class StackTarget:
    """The function alias a stack deploys and its public HTTP endpoint (None when it has none)."""

    target: CloudTarget
    endpoint_url: str | None


def load_outputs(stack: str, path: Path | None) -> dict[str, Any]:
    """The stack's outputs (``{}`` when no file was named and the default one does not exist)."""
    file = path or DEFAULT_OUTPUTS_DIR / f"{stack}.json"
    if not file.exists():
        if path is not None:
            raise FileNotFoundError(
                f"outputs {file}: no such file (save it with `pulumi stack output --json`)"
            )
        return {}
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise StackOutputsError(f"stack outputs {file} are not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StackOutputsError(f"stack outputs {file} must be a JSON object, got {type(data).__name__}")
    return data


def resolve_stack(
    stack: str,
    outputs_path: Path | None = None,
    *,
    cloud: str | None = None,
    function: str | None = None,
    alias: str | None = None,
    region: str | None = None,
    namespace: str | None = None,
    endpoint_url: str | None = None,
    api_endpoint: str | None = None,
    timeout_s: float = 10.0,
) -> StackTarget:
    """Flags over stack outputs; raises a ValueError naming whatever is still missing."""
    outputs = load_outputs(stack, outputs_path)
    values = {
        "cloud": cloud or outputs.get("cloud"),
        "function": function or outputs.get("functionName"),
        "alias": alias or outputs.get("aliasName"),
        "region": region or outputs.get("region"),
    }
    missing = [name for name, value in values.items() if not value]
    if missing:
        flags = ", ".join(f"--{name}" for name in missing)
        raise StackOutputsError(
            f"stack {stack!r}: no value for {flags} (give the flag or add it to the stack outputs)"
        )
    cloud_id = cloud_name(str(values["cloud"]))  # infra exports "tencentcloud" / "aws"
    credentials = CloudTarget.tencent_credentials() if cloud_id == "tencent" else {}
    target = CloudTarget(
        cloud=cloud_id,  # type: ignore[arg-type]
        function=str(values["function"]),
        alias=str(values["alias"]),
        region=str(values["region"]),
        namespace=namespace or outputs.get("namespace") or "default",
        endpoint=api_endpoint,
        timeout_s=timeout_s,
        reserved_capacity=outputs.get("reservedCapacity") or PROVISIONED_CONCURRENCY,
        **credentials,  # type: ignore[arg-type]
    )
    return StackTarget(target, endpoint_url or outputs.get("endpointUrl") or None)
