"""What AWS refuses, checked in the proxy before moto sees a request: botocore's service model, then
a table of documented cross-field rules (each with the sentence of the API reference it comes from).

moto accepts much of what AWS refuses (``Statistics`` together with ``ExtendedStatistics`` was one such
request, and every scaler tick failed on AWS while the tests passed). Each request to Application Auto
Scaling (JSON), CloudWatch (Smithy RPC v2 CBOR, as boto3 sends it) and Lambda (REST-JSON) is decoded
into its parameters and checked:

- the model: required members, no unknown member, enum values, min/max lengths and values;
- :data:`RULES`: the cross-field rules the model cannot state.

A violation is answered with the service's error code, so the client under test sees what AWS would
answer. Other services (S3, IAM: test setup and the state object) pass unchecked. To add a rule (issue
12 adds Lambda Managed Instances ones), append a :class:`Rule` with its doc sentence.
"""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import ServiceModel, Shape
from botocore.parsers import RpcV2CBORParser


@dataclass(frozen=True)
class Violation:
    """A refused request: the service's error code and AWS-like message."""

    code: str
    message: str


@dataclass(frozen=True)
class Rule:
    """A documented cross-field rule of one operation.

    service / operation: where it applies. doc: the API reference's sentence and its URL. check:
    the decoded parameters -> a violation message, or None when the request obeys the rule.
    """

    service: str
    operation: str
    code: str
    doc: str
    check: Callable[[Mapping[str, Any]], str | None]


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _statistics_xor_extended(params: Mapping[str, Any]) -> str | None:
    if bool(params.get("Statistics")) == bool(params.get("ExtendedStatistics")):
        return "You must specify either Statistics or ExtendedStatistics, but not both."
    return None


def _at_most_1440_points(params: Mapping[str, Any]) -> str | None:
    try:
        span = _seconds(params["EndTime"]) - _seconds(params["StartTime"])
    except (KeyError, ValueError):
        return None
    period = int(params.get("Period") or 60)
    if span <= 0:
        return "The parameter StartTime must be less than the parameter EndTime."
    if span / period > 1440:
        return f"You have requested up to {int(span / period)} datapoints, which exceeds the limit of 1440."
    return None


def _period_multiple_of_60(params: Mapping[str, Any]) -> str | None:
    period = int(params.get("Period") or 0)
    if period in (1, 5, 10, 20, 30) or (period >= 60 and period % 60 == 0):
        return None
    return f"The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60, got {period}."


def _min_not_above_max(params: Mapping[str, Any]) -> str | None:
    low, high = params.get("MinCapacity"), params.get("MaxCapacity")
    if low is not None and high is not None and low > high:
        return f"Minimum capacity {low} cannot be greater than maximum capacity {high}."
    return None


def _not_latest(params: Mapping[str, Any]) -> str | None:
    if params.get("Qualifier") == "$LATEST":
        return "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    return None


def _one_additional_version(params: Mapping[str, Any]) -> str | None:
    weights = (params.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    if len(weights) > 1:
        return "Number of additional versions cannot be greater than 1."
    if params.get("FunctionVersion") in weights:
        return "Alias cannot route to the version it points to as an additional version."
    return None


RULES: list[Rule] = [
    Rule(
        "monitoring",
        "GetMetricStatistics",
        "InvalidParameterCombination",
        'Statistics / ExtendedStatistics: "You must specify either Statistics or ExtendedStatistics, '
        'but not both." (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/'
        "API_GetMetricStatistics.html)",
        _statistics_xor_extended,
    ),
    Rule(
        "monitoring",
        "GetMetricStatistics",
        "InvalidParameterCombination",
        '"The maximum number of data points returned from a single call is 1,440. If you request more '
        'than 1,440 data points, CloudWatch returns an error." (API_GetMetricStatistics.html)',
        _at_most_1440_points,
    ),
    Rule(
        "monitoring",
        "GetMetricStatistics",
        "InvalidParameterValue",
        'Period: "Valid values are 1, 5, 10, 20, 30, 60, and any multiple of 60." '
        "(API_GetMetricStatistics.html)",
        _period_multiple_of_60,
    ),
    Rule(
        "application-autoscaling",
        "RegisterScalableTarget",
        "ValidationException",
        'MaxCapacity: "the maximum value that you plan to scale out to"; MinCapacity: "the minimum '
        'value that you plan to scale in to" (https://docs.aws.amazon.com/autoscaling/application/'
        "APIReference/API_RegisterScalableTarget.html): min <= max",
        _min_not_above_max,
    ),
    Rule(
        "lambda",
        "PutProvisionedConcurrencyConfig",
        "InvalidParameterValueException",
        'Qualifier: "The version number or alias name." $LATEST is neither '
        "(https://docs.aws.amazon.com/lambda/latest/dg/API_PutProvisionedConcurrencyConfig.html)",
        _not_latest,
    ),
    Rule(
        "lambda",
        "UpdateAlias",
        "InvalidParameterValueException",
        'RoutingConfig: "The routing configuration of the alias" routes to one additional version '
        '(https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html: "You can point an '
        'alias a maximum of two Lambda function versions")',
        _one_additional_version,
    ),
    Rule(
        "lambda",
        "CreateAlias",
        "InvalidParameterValueException",
        'as UpdateAlias: "You can point an alias a maximum of two Lambda function versions" '
        "(https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html)",
        _one_additional_version,
    ),
]
# Rules that depend on what already exists (the proxy looks the target up in moto, then asks these).
REGISTER_TARGET_DOC = (
    'RegisterScalableTarget MinCapacity / MaxCapacity: "This property is required when registering a new '
    'scalable target." and, for an existing one, "Any parameters that you don\'t specify are not changed by '
    'this update request." (https://docs.aws.amazon.com/autoscaling/application/APIReference/'
    "API_RegisterScalableTarget.html)"
)


def register_against_existing(params: Mapping[str, Any], existing: tuple[int, int] | None) -> str | None:
    """What AWS refuses in a RegisterScalableTarget given the target's current (MinCapacity,
    MaxCapacity), or None when it does not exist yet (:data:`REGISTER_TARGET_DOC`)."""
    if existing is None:
        missing = [name for name in ("MinCapacity", "MaxCapacity") if params.get(name) is None]
        if missing:
            return f"{' and '.join(missing)} must be specified when registering a new scalable target."
        return None
    low = params.get("MinCapacity", existing[0])
    high = params.get("MaxCapacity", existing[1])
    if low > high:
        return f"Minimum capacity {low} cannot be greater than maximum capacity {high}."
    return None


# the model check's error code per service (AWS's own for a malformed parameter)
MODEL_ERROR_CODES = {
    "application-autoscaling": "ValidationException",
    "monitoring": "InvalidParameterValue",
    # Lambda answers a constraint violation of its model with "ValidationException: 1 validation error
    # detected: Value ... failed to satisfy constraint" (its semantic checks: InvalidParameterValueException)
    "lambda": "ValidationException",
}


@cache
def service_model(name: str) -> ServiceModel:
    """botocore's model of a service by its client name (``cloudwatch``, ``lambda``, ...)."""
    return botocore.session.get_session().get_service_model(name)


# ----- decoding a request into its parameters -----
@dataclass(frozen=True)
class DecodedRequest:
    """A request's service (endpoint prefix), operation and parameters as the model names them."""

    service: str
    operation: str
    params: dict[str, Any]
    protocol: str


def _coerce(shape: Shape, text: str) -> Any:
    if shape.type_name in ("integer", "long"):
        return int(text)
    if shape.type_name in ("double", "float"):
        return float(text)
    if shape.type_name == "boolean":
        return text.lower() == "true"
    return text


@cache
def _lambda_routes() -> list[tuple[str, re.Pattern[str], dict[str, str], str]]:
    """(method, path regex, fixed query, operation) for every Lambda operation, most specific first."""
    model = service_model("lambda")
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path, _, fixed = http["requestUri"].partition("?")
        pattern = re.sub(r"\{([^}+]+)\+\}", r"(?P<\1>.+)", path)
        pattern = re.sub(r"\{([^}]+)\}", r"(?P<\1>[^/]+)", pattern)
        query = {k: v[0] for k, v in parse_qs(fixed, keep_blank_values=True).items()}
        routes.append((http["method"], re.compile(f"^{pattern}$"), query, name))
    return sorted(routes, key=lambda r: -len(r[2]))


def _decode_lambda(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> DecodedRequest | None:
    args = parse_qs(query, keep_blank_values=True)
    found = next(
        (
            (match, name)
            for route_method, pattern, fixed, name in _lambda_routes()
            if route_method == method
            and (match := pattern.match(path))
            and all(args.get(k, [None])[0] == v for k, v in fixed.items())
        ),
        None,
    )
    if found is None:
        return None
    match, name = found
    operation = service_model("lambda").operation_model(name)
    shape = operation.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return DecodedRequest("lambda", name, params, "rest-json")
    labels = {k: unquote(v) for k, v in match.groupdict().items()}
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire = member_shape.serialization.get("name", member)
        if location == "uri" and wire in labels:
            params[member] = labels[wire]
        elif location == "querystring" and wire in args:
            params[member] = _coerce(member_shape, args[wire][0])
        elif location == "header" and headers.get(wire) is not None:
            params[member] = _coerce(member_shape, headers[wire])
    payload = shape.serialization.get("payload")
    if payload:
        if body:
            params[payload] = body
    elif body:
        params.update(json.loads(body))
    return DecodedRequest("lambda", name, params, "rest-json")


def decode(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> DecodedRequest | None:
    """The request's service, operation and parameters; None for services not checked here."""
    target = headers.get("X-Amz-Target") or ""
    if target.startswith("AnyScaleFrontendService."):
        operation = target.rsplit(".", 1)[-1]
        return DecodedRequest("application-autoscaling", operation, json.loads(body or b"{}"), "json")
    if path.startswith("/service/GraniteServiceVersion20100801/operation/"):
        operation = path.rsplit("/", 1)[-1]
        params = RpcV2CBORParser().parse_data_item(io.BufferedReader(io.BytesIO(body))) if body else {}
        return DecodedRequest("monitoring", operation, dict(params), "smithy-rpc-v2-cbor")
    if target.startswith("GraniteServiceVersion20100801."):
        return DecodedRequest("monitoring", target.rsplit(".", 1)[-1], json.loads(body or b"{}"), "json")
    if re.match(r"^/20\d\d-\d\d-\d\d/", path):
        return _decode_lambda(method, path, query, headers, body)
    return None


_CLIENT_NAMES = {
    "monitoring": "cloudwatch",
    "application-autoscaling": "application-autoscaling",
    "lambda": "lambda",
}


# ----- checking -----
def _model_problems(shape: Shape, value: Any, where: str) -> list[str]:
    problems: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            return [f"{where} must be a structure"]
        for required in shape.required_members:
            if value.get(required) is None:
                problems.append(f"{where}{required} is required")
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{where}{key} is not a parameter of this operation")
            elif item is not None:
                problems += _model_problems(shape.members[key], item, f"{where}{key}.")
        return problems
    where = where.rstrip(".")
    sized = None
    if kind == "list":
        sized = len(value)
        for i, item in enumerate(value):
            problems += _model_problems(shape.member, item, f"{where}[{i}].")
    elif kind == "map":
        sized = len(value)
        for key, item in value.items():
            problems += _model_problems(shape.key, key, f"{where} key.")
            problems += _model_problems(shape.value, item, f"{where}[{key}].")
    elif kind == "string":
        sized = len(value)
        if shape.enum and value not in shape.enum:
            problems.append(f"{where} = {value!r} is not one of {', '.join(shape.enum)}")
    elif kind in ("integer", "long", "double", "float"):
        if "min" in meta and value < meta["min"]:
            problems.append(f"{where} = {value} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{where} = {value} is above the maximum {meta['max']}")
    if sized is not None:
        if "min" in meta and sized < meta["min"]:
            problems.append(f"{where} has length {sized}, below the minimum {meta['min']}")
        if "max" in meta and sized > meta["max"]:
            problems.append(f"{where} has length {sized}, above the maximum {meta['max']}")
    return problems


def check(request: DecodedRequest) -> Violation | None:
    """The first thing AWS would refuse in ``request``: the model, then :data:`RULES`."""
    model = service_model(_CLIENT_NAMES[request.service])
    if request.operation not in model.operation_names:
        return Violation("UnknownOperationException", f"{request.operation} is not an operation")
    shape = model.operation_model(request.operation).input_shape
    if shape is not None:
        problems = _model_problems(shape, request.params, "")
        if problems:
            return Violation(MODEL_ERROR_CODES[request.service], "; ".join(problems))
    for rule in RULES:
        if (rule.service, rule.operation) == (request.service, request.operation):
            message = rule.check(request.params)
            if message:
                return Violation(rule.code, message)
    return None


# ----- answering as the service does -----
def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 256:
        return bytes([major << 5 | 24, length])
    return bytes([major << 5 | 25]) + struct.pack(">H", length)


def cbor_text_map(values: Mapping[str, str]) -> bytes:
    """A CBOR map of text strings (what an RPC v2 CBOR error body holds)."""
    out = _cbor_head(5, len(values))
    for key, value in values.items():
        for text in (key, value):
            data = text.encode()
            out += _cbor_head(3, len(data)) + data
    return out


def error_answer(request: DecodedRequest, violation: Violation) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of AWS's 400 answer in the request's protocol."""
    if request.protocol == "smithy-rpc-v2-cbor":
        body = cbor_text_map({"__type": violation.code, "message": violation.message})
        headers = {
            "Content-Type": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "x-amzn-query-error": f"{violation.code};Sender",
        }
        return 400, headers, body
    if request.protocol == "rest-json":
        body = json.dumps({"Type": "User", "message": violation.message}).encode()
        return 400, {"Content-Type": "application/json", "x-amzn-ErrorType": violation.code}, body
    body = json.dumps({"__type": violation.code, "message": violation.message}).encode()
    return 400, {"Content-Type": "application/x-amz-json-1.1"}, body
