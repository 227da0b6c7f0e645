"""Lambda Managed Instances in the AWS stand-in: capacity providers, function scaling configs and the
GPU fields of functions, which moto does not implement.

Every request of these operations is checked against botocore's lambda service model (types, required
members, min/max, patterns, enums: what AWS's servers enforce and botocore's client does not), then
against the documented cross-field rules below, each with the sentence it comes from:

| rule | source |
|---|---|
| ``AcceleratorMemorySize`` in {3, 6, 12, 16, 24, 48} | "Valid values: 3, 6, 12, 16, 24, 48." (Lambda API reference, AcceleratorConfig) |
| ``AcceleratorConfig`` needs ``CapacityProviderConfig`` | "To use an accelerator, the function must also have a capacity provider configuration (CapacityProviderConfig) for Lambda Managed Instances." (API reference, AcceleratorConfig) |
| ... and package type Image on x86_64 | "Lambda supports accelerator configuration only for functions that use the Image package type and the x86_64 architecture." (AWS SAM, AcceleratorConfig) |
| scaling config on a version, never an alias | ``PublishedFunctionQualifier`` pattern ``$LATEST.PUBLISHED|[0-9]+`` (botocore); "This configuration applies to both $LATEST.PUBLISHED and numeric function versions." (AWS SAM, FunctionScalingConfig) |
| scaling config only for Managed Instances functions | "Configuration that defines the scaling behavior for a Lambda Managed Instances function" (API reference, FunctionScalingConfig) |
| ``ExecutionEnvironmentMemoryGiBPerVCpu`` in {2, 4, 8} | "The supported memory-to-CPU ratios are 2GB, 4GB, or 8GB per CPU." (AWS SAM, CapacityProviderConfig; botocore only bounds it to 2-8) |
| ``MemorySize`` 128-10240 MB without ``CapacityProviderConfig`` | "You can configure memory between 128 MB and 10,240 MB in 1-MB increments." (Lambda Developer Guide, configuration-memory; botocore's MemorySize max is 32768, the Managed Instances' bound) |
| ``MemorySize`` >= 2048 MB with ``CapacityProviderConfig`` | "The minimum supported function size is 2GB and 1 vCPU." (Best practices for Lambda Managed Instances; checked when the request gives MemorySize: the docs give no default for these functions) |
| no ``CapacityProviderConfig`` added to an existing function | "This configuration determines the compute type of a function and needs to be specified during the first function deployment. It can't be added or removed after the function resource has been created." (AWS SAM, CapacityProviderConfig) |
| a function's capacity provider must exist | (assumed: an unknown ARN cannot be launched on) |
| Min <= Max execution environments | (assumed: no sentence found; a floor above the ceiling cannot be kept) |
| at most 100 published versions of functions on one capacity provider (``FunctionVersionsPerCapacityProviderLimitExceededException``) | "Function versions per capacity provider: 100. The maximum number of function versions per capacity provider. Cannot be increased." (Lambda Managed Instances quotas) |

A requested scaling config becomes the applied one ``apply_s`` seconds later (Lambda answers 202 and
applies asynchronously). ``GetFunctionScalingConfig`` answers as Lambda does: "The API reports the scaling
configuration under RequestedFunctionScalingConfig while a change is still settling and moves it to
AppliedFunctionScalingConfig once it takes effect, clearing the other." (terraform-provider-aws,
internal/service/lambda/function_scaling_config.go, Read; the pulumi-aws 7.51.1 docs of
``FunctionScalingConfig``: "Requested is only returned prior to settlement"). A client that reads only
the requested config sees nothing once a change has settled.
``PutFunctionScalingConfig`` without ``FunctionScalingConfig`` resets the version's config ("There is no
dedicated DeleteFunctionScalingConfig API", ibid., Delete): that is what deleting Pulumi's resource does.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

ACCELERATOR_MEMORY_SIZES_GB = (3, 6, 12, 16, 24, 48)
MEMORY_GIB_PER_VCPU = (2, 4, 8)
STANDARD_MAX_MEMORY_MB = 10240
MANAGED_INSTANCES_MIN_MEMORY_MB = 2048
VERSIONS_PER_CAPACITY_PROVIDER = (
    100  # "Function versions per capacity provider: 100 ... Cannot be increased."
)
ACCOUNT = "123456789012"

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/2025-11-30/capacity-providers$"), "CreateCapacityProvider"),
    ("GET", re.compile(r"^/2025-11-30/capacity-providers$"), "ListCapacityProviders"),
    ("GET", re.compile(r"^/2025-11-30/capacity-providers/([^/]+)$"), "GetCapacityProvider"),
    ("PUT", re.compile(r"^/2025-11-30/capacity-providers/([^/]+)$"), "UpdateCapacityProvider"),
    ("DELETE", re.compile(r"^/2025-11-30/capacity-providers/([^/]+)$"), "DeleteCapacityProvider"),
    (
        "GET",
        re.compile(r"^/2025-11-30/functions/([^/]+)/function-scaling-config$"),
        "GetFunctionScalingConfig",
    ),
    (
        "PUT",
        re.compile(r"^/2025-11-30/functions/([^/]+)/function-scaling-config$"),
        "PutFunctionScalingConfig",
    ),
    ("POST", re.compile(r"^/2015-03-31/functions$"), "CreateFunction"),
    ("DELETE", re.compile(r"^/2015-03-31/functions/([^/]+)$"), "DeleteFunction"),
]
_CHECKED = {name for _, _, name in ROUTES} | {
    "UpdateFunctionConfiguration",
    "PublishVersion",
    "DeleteFunction",
}
_BY_FUNCTION_PATH = ("UpdateFunctionConfiguration", "PublishVersion")  # /.../functions/NAME/...
Answer = tuple[int, dict[str, Any], str]  # status, JSON body, error type ("" on success)


def _lambda_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("lambda")


def _check(shape: Any, value: Any, where: str, problems: list[str]) -> None:
    """Constraints of ``shape`` on ``value`` as AWS's server checks them (messages in AWS's words)."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, Mapping):
            problems.append(f"Value at '{where}' failed to satisfy constraint: Member must be a structure")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(
                    f"Value null at '{where}{name}' failed to satisfy constraint: Member must not be null"
                )
        for name, member in value.items():
            if name not in shape.members:
                problems.append(f"'{where}{name}' is not a member of {shape.name}")
            else:
                _check(shape.members[name], member, f"{where}{name}.", problems)
        return
    label = where.rstrip(".")
    if kind == "list":
        if not isinstance(value, list):
            problems.append(f"Value at '{label}' failed to satisfy constraint: Member must be a list")
            return
        if len(value) < meta.get("min", 0) or len(value) > meta.get("max", len(value)):
            problems.append(f"Value at '{label}' failed to satisfy constraint: Member must have length "
                            f"between {meta.get('min', 0)} and {meta.get('max')}")  # fmt: skip
        for i, item in enumerate(value):
            _check(shape.member, item, f"{label}.{i + 1}.", problems)
        return
    if kind == "string":
        if not isinstance(value, str):
            problems.append(f"Value at '{label}' failed to satisfy constraint: Member must be a string")
            return
        if not meta.get("min", 0) <= len(value) <= meta.get("max", len(value)):
            problems.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must have "
                            f"length between {meta.get('min', 0)} and {meta.get('max')}")  # fmt: skip
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            problems.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must satisfy "
                            f"regular expression pattern: {meta['pattern']}")  # fmt: skip
        if shape.enum and value not in shape.enum:
            problems.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must satisfy "
                            f"enum value set: {shape.enum}")  # fmt: skip
        return
    if kind in ("integer", "long", "double", "float"):
        number_types = (int,) if kind in ("integer", "long") else (int, float)
        if isinstance(value, bool) or not isinstance(value, number_types):
            problems.append(
                f"Value at '{label}' failed to satisfy constraint: Member must be a number ({kind})"
            )
            return
        if not meta.get("min", value) <= value <= meta.get("max", value):
            problems.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must have value "
                            f"between {meta.get('min')} and {meta.get('max')}")  # fmt: skip


class _InvokeContext:
    """The part of Lambda's context object a handler reads: the invocation's remaining time."""

    def __init__(self, timeout_s: float = 60.0) -> None:
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


class ManagedInstancesStandIn:
    """State and rules of Lambda Managed Instances behind :class:`tests.cloud.aws_proxy.AwsProxy`."""

    def __init__(self, apply_s: float = 0.05, region: str = "us-east-1") -> None:
        self.apply_s = apply_s
        self.region = region
        self.capacity_providers: dict[str, dict[str, Any]] = {}
        self.functions: dict[str, dict[str, Any]] = {}  # GPU-relevant configuration of $LATEST
        self.versions: dict[str, dict[str, dict[str, Any]]] = {}  # function -> version -> frozen config
        self.scaling: dict[tuple[str, str], dict[str, Any]] = {}  # (function, version) -> record
        self.refused: list[tuple[str, str]] = []  # (operation, message) of every refusal
        self.fail_next_publish: set[str] = set()  # functions whose next published version fails to start
        self.failed_versions: set[tuple[str, str]] = set()
        self._deleting: dict[str, str] = {}  # function -> qualifier of a DeleteFunction moto is answering
        self.g_instance_vcpu_quota = 64.0  # the account's G and VT on-demand vCPU quota (Service Quotas)
        # function -> the handler of an execution environment that has called /runtime/invocation/next
        self.environments: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {}
        self._model = _lambda_model()
        self._lock = threading.RLock()

    # ----- the proxy's hooks -----
    def intercept(
        self,
        operation: str,
        path: str,
        query: Mapping[str, list[str]],
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> Answer | None:
        """An answer for a request this stand-in owns or refuses; None lets moto handle it."""
        if operation == "GetFunctionConfiguration":
            return self._failed_version(path, query)
        if operation == "GetServiceQuota":
            return self._service_quota(body)
        if operation == "Invoke":
            return self._invoke(path, body, (headers or {}).get("X-Amz-Invocation-Type") or "RequestResponse")
        if operation not in _CHECKED:
            return None
        params = self._params(operation, path, query, body)
        problems: list[str] = []
        _check(self._model.operation_model(operation).input_shape, params, "", problems)
        if problems:
            return self._refuse(operation, 400, "ValidationException",
                                f"{len(problems)} validation error(s) detected: " + "; ".join(problems))  # fmt: skip
        with self._lock:
            return getattr(self, f"_{operation}")(params)

    def observe(self, operation: str, path: str, answer: bytes) -> None:
        """Record what moto accepted: published versions freeze the GPU configuration of ``$LATEST``."""
        if operation == "DeleteFunction":
            self._deleted(path)
            return
        if operation != "PublishVersion":
            return
        published = json.loads(answer)
        function = published["FunctionName"]
        with self._lock:
            frozen = dict(self.functions.get(function, {}))
            self.versions.setdefault(function, {})[str(published["Version"])] = frozen
            if function in self.fail_next_publish:
                self.fail_next_publish.discard(function)
                self.failed_versions.add((function, str(published["Version"])))

    def _service_quota(self, body: bytes) -> Answer | None:
        """The account's "Running On-Demand G and VT instances" quota (ec2 / L-DB2E81BA, vCPUs), which
        moto's Service Quotas lacks: "Lambda Managed Instances are subject to Amazon EC2 service quotas
        applied to your account" (LMI quotas)."""
        params = json.loads(body or b"{}")
        if (params.get("ServiceCode"), params.get("QuotaCode")) != ("ec2", "L-DB2E81BA"):
            return None
        quota = {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA",
                 "QuotaName": "Running On-Demand G and VT instances", "Value": self.g_instance_vcpu_quota,
                 "Unit": "None", "Adjustable": True}  # fmt: skip
        return 200, {"Quota": quota}, ""

    def environment_ready(
        self, function: str, handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    ) -> None:
        """An execution environment of ``function`` called ``/runtime/invocation/next``: from now on it
        takes invocations ("Init phase is complete when extensions have initialized and at least one
        runtime worker has called /runtime/invocation/next. The function is then ready to process
        invocations.", AWS docs, Lambda Managed Instances execution environment)."""
        with self._lock:
            self.environments[function] = handler

    def _invoke(self, path: str, body: bytes, invocation_type: str) -> Answer | None:
        """An invocation of a Managed Instances function goes to an environment that is ready, never to
        one still initialising; with none, it is rejected ("if all runtime workers are busy, new
        invocations are rejected", ibid.; LMI "does not support cold starts"). Asynchronous invocations
        (the scaler's pre-warm events) and other functions: moto answers."""
        function = path.split("/")[3]
        with self._lock:
            managed = self._provider_of(self.functions.get(function, {})) is not None
            handler = self.environments.get(function)
        if not managed or invocation_type == "Event":  # asynchronous: queued by Lambda, answered 202
            return None
        if handler is None:
            return self._refuse("Invoke", 429, "TooManyRequestsException",
                                f"No execution environment of {function} is ready to take invocations")  # fmt: skip
        loop = asyncio.new_event_loop()  # a runtime worker's own (Mangum runs the app on the current loop)
        asyncio.set_event_loop(loop)
        try:
            return 200, handler(json.loads(body or b"{}"), _InvokeContext()), ""
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def amend(self, operation: str, path: str, answer: bytes) -> bytes:
        """moto's answer to GetFunctionConfiguration of ``$LATEST`` with the GPU fields it does not keep
        (``AcceleratorConfig``: "The accelerator configuration for the function", FunctionConfiguration
        in botocore's model)."""
        if operation != "GetFunctionConfiguration" or not answer:
            return answer
        config = json.loads(answer)
        with self._lock:
            version = str(config.get("Version") or "$LATEST")
            stored = (
                self.functions.get(config.get("FunctionName", ""), {})
                if version == "$LATEST"
                else self.versions.get(config.get("FunctionName", ""), {}).get(version, {})
            )
        if "AcceleratorConfig" in stored:
            config["AcceleratorConfig"] = stored["AcceleratorConfig"]
        return json.dumps(config).encode()

    def _failed_version(self, path: str, query: Mapping[str, list[str]]) -> Answer | None:
        """A version Managed Instances could not start: "Lambda launches Managed Instances ... and starts
        three execution environments before marking the function version ACTIVE" (AWS docs, scaling);
        when they cannot start, the version's State is Failed."""
        function, qualifier = path.split("/")[3], (query.get("Qualifier") or [""])[0]
        if (function, qualifier) not in self.failed_versions:
            return None
        return 200, {"FunctionName": function, "Version": qualifier, "State": "Failed",
                     "StateReason": "Insufficient capacity for the allowed instance types",
                     "StateReasonCode": "InsufficientCapacity"}, ""  # fmt: skip

    # ----- helpers -----
    def _params(
        self, operation: str, path: str, query: Mapping[str, list[str]], body: bytes
    ) -> dict[str, Any]:
        params: dict[str, Any] = json.loads(body) if body else {}
        shape = self._model.operation_model(operation).input_shape
        method_path = next((p for m, p, name in ROUTES if name == operation), None)
        groups = method_path.match(path).groups() if method_path is not None else ()
        if operation in _BY_FUNCTION_PATH:
            groups = (path.split("/")[3],)
        uri_members = [n for n, m in shape.members.items() if m.serialization.get("location") == "uri"]
        params.update(dict(zip(uri_members, groups, strict=False)))
        for name, member in shape.members.items():
            if member.serialization.get("location") == "querystring":
                wire = member.serialization.get("name", name)
                if wire in query:
                    value = query[wire][0]
                    params[name] = int(value) if member.type_name == "integer" else value
        return params

    def _refuse(self, operation: str, status: int, code: str, message: str) -> Answer:
        self.refused.append((operation, message))
        return status, {"__type": code, "message": message, "Type": "User"}, code

    def _arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:capacity-provider:{name}"

    @staticmethod
    def _name_of(name_or_arn: str) -> str:
        return name_or_arn.rsplit(":", 1)[-1]

    # ----- capacity providers -----
    def _CreateCapacityProvider(self, params: dict[str, Any]) -> Answer:
        name = params["CapacityProviderName"]
        if name in self.capacity_providers:
            return self._refuse("CreateCapacityProvider", 409, "ResourceConflictException",
                                f"Capacity provider {name} already exists")  # fmt: skip
        provider = {**params, "CapacityProviderArn": self._arn(name), "State": "Active"}
        self.capacity_providers[name] = provider
        return 202, {"CapacityProvider": provider}, ""

    def _GetCapacityProvider(self, params: dict[str, Any]) -> Answer:
        provider = self.capacity_providers.get(self._name_of(params["CapacityProviderName"]))
        if provider is None:
            return self._refuse(
                "GetCapacityProvider", 404, "ResourceNotFoundException", "Capacity provider not found"
            )
        return 200, {"CapacityProvider": provider}, ""

    def _UpdateCapacityProvider(self, params: dict[str, Any]) -> Answer:
        status, answer, error = self._GetCapacityProvider(params)
        if error:
            return status, answer, error
        answer["CapacityProvider"].update({k: v for k, v in params.items() if k != "CapacityProviderName"})
        return 202, answer, ""

    def _DeleteCapacityProvider(self, params: dict[str, Any]) -> Answer:
        name = self._name_of(params["CapacityProviderName"])
        if name not in self.capacity_providers:
            return self._refuse(
                "DeleteCapacityProvider", 404, "ResourceNotFoundException", "Capacity provider not found"
            )
        return 202, {"CapacityProvider": self.capacity_providers.pop(name)}, ""

    def _ListCapacityProviders(self, params: dict[str, Any]) -> Answer:
        return 200, {"CapacityProviders": list(self.capacity_providers.values())}, ""

    # ----- functions (checked here, created by moto) -----
    def _gpu_problem(self, config: Mapping[str, Any]) -> str | None:
        managed = (config.get("CapacityProviderConfig") or {}).get(
            "LambdaManagedInstancesCapacityProviderConfig"
        )
        if (
            managed is not None
            and self._name_of(managed["CapacityProviderArn"]) not in self.capacity_providers
        ):
            return f"Capacity provider {managed['CapacityProviderArn']} does not exist"
        ratio = (managed or {}).get("ExecutionEnvironmentMemoryGiBPerVCpu")
        if ratio is not None and ratio not in MEMORY_GIB_PER_VCPU:
            return "ExecutionEnvironmentMemoryGiBPerVCpu must be 2, 4 or 8 GiB per vCPU"
        memory = config.get("MemorySize")
        if memory is not None and managed is None and memory > STANDARD_MAX_MEMORY_MB:
            return f"MemorySize {memory} MB is above {STANDARD_MAX_MEMORY_MB} MB for a function without a capacity provider"
        if memory is not None and managed is not None and memory < MANAGED_INSTANCES_MIN_MEMORY_MB:
            return f"MemorySize {memory} MB is below {MANAGED_INSTANCES_MIN_MEMORY_MB} MB for a Lambda Managed Instances function"
        accelerator = config.get("AcceleratorConfig")
        if accelerator is None:
            return None
        if accelerator["AcceleratorMemorySize"] not in ACCELERATOR_MEMORY_SIZES_GB:
            return "AcceleratorMemorySize must be one of 3, 6, 12, 16, 24, 48"
        if managed is None:
            return "To use an accelerator, the function must also have a capacity provider configuration"
        if config.get("PackageType") != "Image" or config.get("Architectures", ["x86_64"]) != ["x86_64"]:
            return "Accelerator configuration is supported only for the Image package type on x86_64"
        return None

    def _CreateFunction(self, params: dict[str, Any]) -> Answer | None:
        config = {k: params[k] for k in ("PackageType", "Architectures", "CapacityProviderConfig",
                                         "AcceleratorConfig", "MemorySize") if k in params}  # fmt: skip
        config.setdefault("PackageType", "Zip")
        problem = self._gpu_problem(config)
        if problem:
            return self._refuse("CreateFunction", 400, "InvalidParameterValueException", problem)
        self.functions[params["FunctionName"]] = config
        return None  # moto creates it

    def _UpdateFunctionConfiguration(self, params: dict[str, Any]) -> Answer | None:
        function = params["FunctionName"]
        current = self.functions.setdefault(function, {"PackageType": "Zip"})
        if "CapacityProviderConfig" in params and "CapacityProviderConfig" not in current:
            return self._refuse("UpdateFunctionConfiguration", 400, "InvalidParameterValueException",
                                "CapacityProviderConfig can only be set when the function is created")  # fmt: skip
        merged = current | {
            k: params[k] for k in ("CapacityProviderConfig", "AcceleratorConfig", "MemorySize") if k in params
        }
        problem = self._gpu_problem(merged)
        if problem:
            return self._refuse("UpdateFunctionConfiguration", 400, "InvalidParameterValueException", problem)
        self.functions[function] = merged
        return None  # moto updates the rest

    # ----- versions: the per-capacity-provider quota, deletion -----
    def _PublishVersion(self, params: dict[str, Any]) -> Answer | None:
        """Refuse a version beyond the capacity provider's quota ("Function versions per capacity
        provider: 100 ... Cannot be increased", Lambda Managed Instances quotas; botocore's
        ``FunctionVersionsPerCapacityProviderLimitExceededException``, HTTP 400)."""
        provider = self._provider_of(self.functions.get(params["FunctionName"], {}))
        if provider is None:
            return None
        held = sum(
            1 for versions in self.versions.values() for frozen in versions.values()
            if self._provider_of(frozen) == provider
        )  # fmt: skip
        if held >= VERSIONS_PER_CAPACITY_PROVIDER:
            return self._refuse("PublishVersion", 400, "FunctionVersionsPerCapacityProviderLimitExceededException",
                                f"Capacity provider {provider} already has {held} function versions "
                                f"(quota {VERSIONS_PER_CAPACITY_PROVIDER})")  # fmt: skip
        return None

    def _DeleteFunction(self, params: dict[str, Any]) -> Answer | None:
        """ "To delete a specific function version, use the Qualifier parameter. Otherwise, all versions
        and aliases are deleted." (API reference, DeleteFunction): moto deletes; :meth:`observe` then
        forgets what was deleted (the qualifier is noted here, where the query is known)."""
        self._deleting[params["FunctionName"]] = params.get("Qualifier") or ""
        return None

    def _deleted(self, path: str) -> None:
        """moto deleted a function (no Qualifier) or one version: forget its frozen configs and floors."""
        function = path.split("/")[3]
        with self._lock:
            qualifier = self._deleting.pop(function, "")
            versions = self.versions.get(function, {})
            gone = [qualifier] if qualifier else list(versions)
            for version in gone:
                versions.pop(version, None)
                self.scaling.pop((function, version), None)
            if not qualifier:
                self.versions.pop(function, None)
                self.functions.pop(function, None)

    def _provider_of(self, config: Mapping[str, Any]) -> str | None:
        managed = (config.get("CapacityProviderConfig") or {}).get(
            "LambdaManagedInstancesCapacityProviderConfig"
        )
        return None if managed is None else self._name_of(managed["CapacityProviderArn"])

    # ----- function scaling configs -----
    def _version_config(self, operation: str, params: dict[str, Any]) -> tuple[str, str, Answer | None]:
        function, qualifier = params["FunctionName"], params["Qualifier"]
        versions = self.versions.get(function, {})
        if qualifier == "$LATEST.PUBLISHED":
            qualifier = max(versions, key=int) if versions else qualifier
        if qualifier not in versions:
            return (
                function,
                qualifier,
                self._refuse(
                    operation, 404, "ResourceNotFoundException", f"Function not found: {function}:{qualifier}"
                ),
            )
        if "CapacityProviderConfig" not in versions[qualifier]:
            return function, qualifier, self._refuse(
                operation, 400, "InvalidParameterValueException",
                "Function scaling configuration is supported only for Lambda Managed Instances functions",
            )  # fmt: skip
        return function, qualifier, None

    def _PutFunctionScalingConfig(self, params: dict[str, Any]) -> Answer:
        function, version, refused = self._version_config("PutFunctionScalingConfig", params)
        if refused:
            return refused
        wanted = params.get("FunctionScalingConfig") or {}
        low, high = wanted.get("MinExecutionEnvironments"), wanted.get("MaxExecutionEnvironments")
        if low is not None and high is not None and low > high:
            return self._refuse("PutFunctionScalingConfig", 400, "InvalidParameterValueException",
                                "MinExecutionEnvironments must not exceed MaxExecutionEnvironments")  # fmt: skip
        record = self.scaling.setdefault((function, version), {"applied": {}, "requested": {}, "at": 0.0})
        if record["requested"]:
            record["applied"] = self._applied(record)
        record["requested"], record["at"] = dict(wanted), time.monotonic()
        return 202, {"FunctionState": "Active"}, ""

    def _GetFunctionScalingConfig(self, params: dict[str, Any]) -> Answer:
        function, version, refused = self._version_config("GetFunctionScalingConfig", params)
        if refused:
            return refused
        record = self.scaling.get((function, version))
        answer: dict[str, Any] = {
            "FunctionArn": f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{function}:{version}"
        }
        if record is not None:
            if self._settled(record):
                answer["AppliedFunctionScalingConfig"] = record["requested"]
            else:
                answer["RequestedFunctionScalingConfig"] = record["requested"]
                if record["applied"]:
                    answer["AppliedFunctionScalingConfig"] = record["applied"]
        return 200, answer, ""

    def _settled(self, record: dict[str, Any]) -> bool:
        return time.monotonic() - record["at"] >= self.apply_s

    def _applied(self, record: dict[str, Any]) -> dict[str, Any]:
        return record["requested"] if self._settled(record) else record["applied"]

    # ----- test-side checks -----
    def floors(self, function: str) -> dict[str, int]:
        """Every version of ``function`` with a non-zero requested floor: the versions that bill."""
        with self._lock:
            return {
                version: record["requested"]["MinExecutionEnvironments"]
                for (name, version), record in self.scaling.items()
                if name == function and record["requested"].get("MinExecutionEnvironments")
            }

    def floor(self, function: str, version: str) -> int | None:
        """The requested MinExecutionEnvironments of a version (None without a scaling config)."""
        with self._lock:
            record = self.scaling.get((function, version))
            return None if record is None else record["requested"].get("MinExecutionEnvironments")
