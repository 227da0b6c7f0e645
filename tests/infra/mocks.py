"""Run the Pulumi program under Pulumi's mocks and record every resource it registers.

Mocks return what each provider computes (versions, ARNs, URLs), else those outputs silently become
None. ``set_mocks`` is process-global, so every run installs its own mocks and config.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra.config import parse_stack_config
from infra.program import build_stack, current_raw_config
from layers import BuildManifest, BuildRequest, build_packages
from tests.cloud.scf_emulator import function_description_problem

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
# The shipped examples leave the API key to `pulumi config set --secret`; the tests set it so.
EXAMPLE_API_KEY = "sk-example-key"
EXAMPLE_SECRETS = frozenset({"llmfn:apiKey"})
# a function URL as SCF shows them: https://<appid>-<id>.<region>.tencentscf.com
TENCENT_FUNCTION_URL = "https://1250000000-abcd1234.ap-guangzhou.tencentscf.com"
IMAGE_DIGEST = "sha256:" + "ab" * 32
ECR_PASSWORD = "ecr-password-from-token"


def _aws_arn(service: str, kind: str, name: str) -> str:
    return f"arn:aws:{service}:us-east-1:{ACCOUNT}:{kind}:{name}"


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret value in inputs


def plain(value: Any) -> Any:
    """An input value with the engine's secret marking removed (the value itself)."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return value["value"]
    return value


def published_version(inputs: Mapping[str, Any]) -> str:
    """The version number a provider publishes for these inputs: a new number for new inputs (as a
    new publication gets), the same for the same inputs (the mocks of two runs agree)."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    return str(2 + int(digest[:6], 16) % 9000)


def _computed(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """The outputs a provider would compute for this resource (camelCase, as the engine returns them)."""
    name = args.inputs.get("name", args.name)
    computed: dict[str, Callable[[], dict[str, Any]]] = {
        "tencentcloud:Scf/functionVersion:FunctionVersion": lambda: {
            "functionVersion": published_version(args.inputs)
        },
        "tencentcloud:Scf/layer:Layer": lambda: {"layerVersion": 2},
        "aws:lambda/function:Function": lambda: {
            "name": name,
            "arn": _aws_arn("lambda", "function", name),
            "invokeArn": f"arn:aws:apigateway:us-east-1:lambda:path/functions/{name}/invocations",
            "version": published_version(args.inputs),
            "lastModified": f"2026-11-30T00:00:00.{published_version(args.inputs)}+0000",  # new per change
        },
        "aws:lambda/alias:Alias": lambda: {
            "arn": _aws_arn("lambda", "function", f"{args.inputs['functionName']}:{name}"),
            "invokeArn": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
            + _aws_arn("lambda", "function", f"{args.inputs['functionName']}:{name}")
            + "/invocations",
        },
        "aws:lambda/layerVersion:LayerVersion": lambda: {
            "arn": _aws_arn("lambda", "layer", f"{args.inputs['layerName']}:1")
        },
        "aws:apigatewayv2/api:Api": lambda: {
            "apiEndpoint": "https://abc123.execute-api.us-east-1.amazonaws.com",
            "executionArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123",
        },
        "aws:apigatewayv2/stage:Stage": lambda: {
            "invokeUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/"
        },
        "aws:iam/role:Role": lambda: {"name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"},
        "aws:s3/bucket:Bucket": lambda: {"bucket": f"{args.inputs.get('bucketPrefix', '')}0001"},
        "aws:cloudwatch/eventRule:EventRule": lambda: {"name": name, "arn": _aws_arn("events", "rule", name)},
        "aws:lambda/capacityProvider:CapacityProvider": lambda: {
            "arn": _aws_arn("lambda", "capacity-provider", name)
        },
        # infra.clouds.aws.gpu.accelerator.LambdaAcceleratorConfig publishes the version; infra.clouds.tencent.scf_dynamic's
        # ScfFunctionUrl answers its URL
        "pulumi-python:dynamic:Resource": lambda: (
            {"url": TENCENT_FUNCTION_URL}
            if "qualifier" in args.inputs
            else {"version": published_version(args.inputs)}
        ),
        "aws:ecr/repository:Repository": lambda: {
            "registryId": ACCOUNT,
            "repositoryUrl": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}",
        },
        "docker-build:index:Image": lambda: {
            "digest": IMAGE_DIGEST,
            "ref": f"{args.inputs['tags'][0]}@{IMAGE_DIGEST}",
        },
        "tencentcloud:Tcr/token:Token": lambda: {"userName": "100012345678", "token": "tcr-token"},
    }
    return computed.get(args.typ, dict)()


S3_BUCKET_PREFIX_MAX_CHARS = 37


@dataclass(frozen=True)
class Registered:
    """One resource the program registered: type token, logical name, inputs (camelCase keys), and
    the options that decide how an update reaches the cloud (recorded by a transformation)."""

    typ: str
    name: str
    inputs: dict[str, Any]
    ignore_changes: frozenset[str] = frozenset()
    replace_on_changes: frozenset[str] = frozenset()
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    depends_on: frozenset[str] = frozenset()  # logical names of the resources in ``depends_on``


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that answer like the providers and keep every registration."""

    def __init__(self) -> None:
        self.registered: list[Registered] = []
        self.options: dict[tuple[str, str], pulumi.ResourceOptions] = {}

    def record_options(self, args: pulumi.ResourceTransformationArgs) -> None:
        """A transformation: keep each resource's options (mocks do not see them)."""
        self.options[(args.type_, args.name)] = args.opts
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ.startswith("tencentcloud:ApiGateway/"):
            # the emulator's words (tests/cloud/scf_emulator.py): API gateway creates no new services
            from tests.cloud.scf_emulator import APIGATEWAY_RETIRED

            raise ValueError(f"{args.name}: UnsupportedOperation: {APIGATEWAY_RETIRED}")
        if args.typ == "tencentcloud:Scf/function:Function":
            # the provider sends description to CreateFunction as is: SCF's rule, as the emulator has it
            problem = function_description_problem(str(args.inputs.get("description") or ""))
            if problem:
                raise ValueError(f"{args.name}: InvalidParameterValue.Description: {problem}")
        prefix = str(args.inputs.get("bucketPrefix") or "") if args.typ == "aws:s3/bucket:Bucket" else ""
        if len(prefix) > S3_BUCKET_PREFIX_MAX_CHARS:
            # pulumi-aws s3.Bucket bucket_prefix: "Must be lowercase and less than or equal to 37
            # characters in length" (the provider refuses a longer one before any call)
            raise ValueError(
                f"{args.name}: bucket_prefix {prefix!r} is over {S3_BUCKET_PREFIX_MAX_CHARS} characters"
            )
        opts = self.options.get((args.typ, args.name)) or pulumi.ResourceOptions()
        self.registered.append(
            Registered(
                args.typ,
                args.name,
                dict(args.inputs),
                frozenset(opts.ignore_changes or ()),
                frozenset(opts.replace_on_changes or ()),
                bool(opts.delete_before_replace),
                bool(opts.retain_on_delete),
                frozenset(getattr(d, "_name", "") for d in (opts.depends_on or ())),  # type: ignore[union-attr]
            )
        )
        return f"{args.name}-id", {**args.inputs, **_computed(args)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = args.args.get("registryId", ACCOUNT)
            return {
                "authorizationToken": "QVdTOnNlY3JldA==",
                "userName": "AWS",
                "password": ECR_PASSWORD,
                "proxyEndpoint": f"https://{registry}.dkr.ecr.us-east-1.amazonaws.com",
                "expiresAt": "2026-12-01T00:00:00Z",
                "id": "us-east-1",
            }, []
        return {}, []


@dataclass(frozen=True)
class StackRun:
    """What one run of the program registered and exported."""

    registered: list[Registered]
    outputs: dict[str, Any]

    def of_type(self, typ: str) -> list[Registered]:
        """Every registration of one type token."""
        return [r for r in self.registered if r.typ == typ]

    def one(self, typ: str) -> Registered:
        """The single registration of a type token (fails when there are none or several)."""
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]


def _as_config_strings(config: Mapping[str, Any]) -> dict[str, str]:
    """Pulumi hands config to programs as strings, structured values as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def install(
    config: Mapping[str, Any], secret_keys: Collection[str] = (), root: Path = REPO_ROOT
) -> RecordingMocks:
    """Install fresh mocks and this stack config for the process; ``root`` is the project directory
    (Pulumi.yaml's) the engine passes to the program.

    Pulumi registers resources on the main thread's current event loop; an ``asyncio.run`` elsewhere
    in the test run leaves none set, so each install starts from a fresh loop.
    """
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="llmfn", stack="test", preview=False)
    # the engine tells the program where Pulumi.yaml is (its working directory is main's, infra/)
    pulumi.runtime.settings.SETTINGS.root_directory = str(root)
    pulumi.runtime.set_all_config(_as_config_strings(config), list(secret_keys))
    return mocks


def run_stack(
    config: Mapping[str, Any], secret_keys: Collection[str] | None = None, root: Path = REPO_ROOT
) -> StackRun:
    """Validate ``config`` and build the stack exactly as ``infra/__main__.py`` does; wait for everything.

    ``secret_keys`` default: ``llmfn:apiKey`` when the config has it (as `pulumi config set --secret`);
    ``root``: the project directory (Pulumi.yaml's) the engine tells the program."""
    if secret_keys is None:
        secret_keys = EXAMPLE_SECRETS & set(config)
    mocks = install(config, secret_keys, root)
    exported: dict[str, Any] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        mocks.record_options(args)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        stack = build_stack(
            parse_stack_config(*current_raw_config()), pulumi.ResourceOptions(transformations=[record])
        )
        return pulumi.Output.from_input(stack.outputs).apply(exported.update)  # type: ignore[attr-defined]

    program()
    return StackRun(mocks.registered, exported)


def example_config(file_name: str) -> dict[str, Any]:
    """The ``config:`` of a shipped example stack file, with the API key a user sets as a secret."""
    config = yaml.safe_load((REPO_ROOT / file_name).read_text())["config"]
    return config | {"llmfn:apiKey": EXAMPLE_API_KEY}


def example_with(file_name: str, **changes: Any) -> dict[str, Any]:
    """An example's config with ``llmfn:<key>`` values changed; a value of None removes the key."""
    config = example_config(file_name)
    for key, value in changes.items():
        if value is None:
            config.pop(f"llmfn:{key}", None)
        else:
            config[f"llmfn:{key}"] = value
    return config


def parse_example(config: Mapping[str, Any]) -> Any:
    """``parse_stack_config`` with the example's API key held as a secret."""
    return parse_stack_config(config, EXAMPLE_SECRETS & set(config))


def build_with_layer(cloud: str, build_dir: Path) -> BuildManifest:
    """Build our function package and a one-package runtime layer (no download) into ``build_dir``."""
    site_packages = build_dir.parent / f"{build_dir.name}-site"
    (site_packages / "tinydep").mkdir(parents=True)
    (site_packages / "tinydep" / "__init__.py").write_text("VALUE = 1\n")
    request = BuildRequest(cloud=cloud, out_dir=build_dir, source_root=REPO_ROOT, site_packages=site_packages)  # type: ignore[arg-type]
    return build_packages(request)
