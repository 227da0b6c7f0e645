"""The one contract between the stacks (``infra/``), the packagers (``layers/``, the image) and the functions.

Every string both sides must agree on is written here once, and both sides import it (Powertools for
AWS Lambda's ``shared/constants.py`` is the model): the ``LLMFN_*`` environment variable names the stacks
write and the functions read, the entry points (module paths and handler strings) per cloud and role,
the one cloud-name type with the single place where user spellings map to it, and the alias name.

Imports nothing of ours but ``core``, so any side (and the packaged function) can import it on its own.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal, get_args

from core.errors import InputError

# --- the cloud ------------------------------------------------------------------------------------

Cloud = Literal["aws", "tencent"]
"""The one canonical cloud name; every spelling a user or a tool writes maps to one of these."""
CLOUDS: Final[tuple[Cloud, ...]] = get_args(Cloud)

# Every spelling the toolkit accepts: "lambda" (the platform), "tencentcloud" (Pulumi's provider name,
# the stack's ``llmfn:cloud``), "scf" (the platform, ``llmfn layer build --cloud``).
CLOUD_SPELLINGS: Final[dict[str, Cloud]] = {
    "aws": "aws",
    "lambda": "aws",
    "tencent": "tencent",
    "tencentcloud": "tencent",
    "scf": "tencent",
}
StackCloud = Literal["tencentcloud", "aws"]
"""The stack's ``llmfn:cloud`` values: Pulumi's provider names."""
STACK_CLOUD: Final[dict[Cloud, StackCloud]] = {"aws": "aws", "tencent": "tencentcloud"}


class UnknownCloudError(InputError):
    """A cloud name none of :data:`CLOUD_SPELLINGS` matches (the message lists the allowed ones)."""


def cloud_name(text: str, field: str = "--cloud") -> Cloud:
    """The canonical cloud for any spelling (case and surrounding blanks ignored).

    ``field`` names the setting in the error, e.g. ``--cloud`` or ``llmfn:cloud``.
    Raises UnknownCloudError naming the field and the allowed spellings.
    """
    name = CLOUD_SPELLINGS.get(text.strip().lower())
    if name is None:
        raise UnknownCloudError(f"{field} must be one of {', '.join(sorted(CLOUD_SPELLINGS))}, got {text!r}")
    return name


# What the scaler's reserved floor is: provisioned concurrency, or on Lambda Managed Instances (AWS GPU
# functions) the version's MinExecutionEnvironments.
ReservedCapacity = Literal["provisioned-concurrency", "execution-environments"]
RESERVED_CAPACITIES: Final[tuple[ReservedCapacity, ...]] = get_args(ReservedCapacity)
PROVISIONED_CONCURRENCY: Final[ReservedCapacity] = "provisioned-concurrency"
EXECUTION_ENVIRONMENTS: Final[ReservedCapacity] = "execution-environments"

# --- the alias ------------------------------------------------------------------------------------

ALIAS_NAME: Final = "live"
"""The alias every stack creates and routes traffic to; ``llmfn promote`` moves its version."""

# --- SCF's image / web function listener ----------------------------------------------------------

SCF_HOST: Final = "0.0.0.0"
SCF_PORT: Final = 9000
"""SCF image and web functions must listen on 0.0.0.0:9000 (the stack sets it as the image port)."""

# --- version descriptions --------------------------------------------------------------------------

DESCRIPTION_PREFIX: Final = "llmfn model-revision="
"""A published version's description starts with this and the model revision it serves: the stack
writes it, ``llmfn promote`` writes and reads it (Lambda's Description, SCF's version description)."""

# --- events -------------------------------------------------------------------------------------

PREWARM_EVENT: Final[dict[str, str]] = {"llmfn": "prewarm"}
"""What the scaler invokes (asynchronously) to start an execution environment early; the Managed
Instances image's forward handler answers it by waiting for the local server instead of forwarding."""

# --- environment variables ------------------------------------------------------------------------

ENV_PREFIX: Final = "LLMFN_"
"""Serve settings are read as ``LLMFN_<FIELD>`` (upper-cased ``ServeSettings`` field names)."""

# Inference function (read by functions.settings.ServeSettings, one per field).
ENV_MODEL_SOURCE: Final = "LLMFN_MODEL_SOURCE"
ENV_MODEL_NAME: Final = "LLMFN_MODEL_NAME"
ENV_MODEL_REVISION: Final = "LLMFN_MODEL_REVISION"
ENV_ENGINE: Final = "LLMFN_ENGINE"
ENV_MAX_CONCURRENCY: Final = "LLMFN_MAX_CONCURRENCY"
ENV_PUBLIC: Final = "LLMFN_PUBLIC"
ENV_API_KEY: Final = "LLMFN_API_KEY"
# Not stack settings, named here so that no LLMFN_ name is written twice: the command line's traceback
# switch and the cache of the embedded tiny model (preload/ reads LLMFN_CACHE itself: it imports nothing of ours).
ENV_DEBUG: Final = "LLMFN_DEBUG"
ENV_CACHE: Final = "LLMFN_CACHE"
ENV_HOST: Final = "LLMFN_HOST"
ENV_PORT: Final = "LLMFN_PORT"
ENV_READY_WAIT_S: Final = "LLMFN_READY_WAIT_S"
ENV_EAGER_INIT: Final = "LLMFN_EAGER_INIT"
ENV_LOCAL_PORT: Final = "LLMFN_LOCAL_PORT"
"""Lambda Managed Instances image: the execution environment's one inference server's port."""
ENV_FUNCTION_TIMEOUT_S: Final = "LLMFN_FUNCTION_TIMEOUT_S"
"""Lambda Managed Instances image: the function's timeout, seconds (the init limit is max(130, it))."""

# Which program an image runs: ROLE_SCALER makes the SCF image the scaler's event function.
ENV_ROLE: Final = "LLMFN_ROLE"
ROLE_SCALER: Final = "scaler"

# Scaler function (read by functions.scaler.settings.ScalerSettings.from_env).
ENV_CLOUD: Final = "LLMFN_CLOUD"
ENV_FUNCTION: Final = "LLMFN_FUNCTION"
ENV_ALIAS: Final = "LLMFN_ALIAS"
ENV_REGION: Final = "LLMFN_REGION"
ENV_NAMESPACE: Final = "LLMFN_NAMESPACE"
ENV_CLOUD_ENDPOINT: Final = "LLMFN_CLOUD_ENDPOINT"
ENV_RESERVED_CAPACITY: Final = "LLMFN_RESERVED_CAPACITY"
ENV_STATE_BUCKET: Final = "LLMFN_STATE_BUCKET"
ENV_STATE_KEY: Final = "LLMFN_STATE_KEY"
ENV_STATE_ENDPOINT: Final = "LLMFN_STATE_ENDPOINT"
# The alias's function URL, where the scaler sends pre-warm requests on SCF (web functions take no
# asynchronous invocation).
ENV_PREWARM_URL: Final = "LLMFN_PREWARM_URL"
ENV_POLICY: Final = "LLMFN_POLICY"
ENV_POLICY_CONFIG: Final = "LLMFN_POLICY_CONFIG"
"""JSON object of the policy's settings."""
ENV_WINDOW_S: Final = "LLMFN_WINDOW_S"
"""The metric window, seconds."""
ENV_UTC_OFFSET_HOURS: Final = "LLMFN_UTC_OFFSET_HOURS"
"""The profile's time zone, hours east of UTC."""

# --- entry points ---------------------------------------------------------------------------------

# Lambda handler strings (module.function) in the zip or the image.
LAMBDA_INFERENCE_HANDLER: Final = "functions.cloud.aws.entry.handler"
LAMBDA_SCALER_HANDLER: Final = "functions.scaler.handler.lambda_handler"
# Lambda Managed Instances image: the handler each worker runs, forwarding to the one local server.
LAMBDA_FORWARD_HANDLER: Final = "functions.image.forward.handler"
# SCF: the timer-trigger (event function) handler of the scaler, and the image's web server module
# (``python -m``; with ENV_ROLE = ROLE_SCALER it serves the scaler's events instead).
SCF_SCALER_HANDLER: Final = "functions.scaler.handler.main_handler"
SCF_EVENT_HANDLER: Final = "functions.cloud.tencent.entry_event.main_handler"
SCF_WEB_MODULE: Final = "functions.cloud.tencent.entry_web"
# The image's entry command module (``python -m functions.image.entry [HANDLER]``).
IMAGE_ENTRY_MODULE: Final = "functions.image.entry"

# Every module the function image starts in some role: its entry command, the SCF web server (inference,
# or the scaler with ENV_ROLE = ROLE_SCALER), the Lambda handlers, and the SCF event handler.
IMAGE_ENTRY_MODULES: Final[tuple[str, ...]] = (
    IMAGE_ENTRY_MODULE,
    SCF_WEB_MODULE,
    LAMBDA_INFERENCE_HANDLER.rpartition(".")[0],
    LAMBDA_FORWARD_HANDLER.rpartition(".")[0],
    LAMBDA_SCALER_HANDLER.rpartition(".")[0],
    SCF_EVENT_HANDLER.rpartition(".")[0],
)

Role = Literal["inference", "scaler"]
# The handler each role's zip must start on Lambda; SCF runs the image, never a zip.
LAMBDA_HANDLERS: Final[dict[Role, str]] = {
    "inference": LAMBDA_INFERENCE_HANDLER,
    "scaler": LAMBDA_SCALER_HANDLER,
}


def handler_module(handler: str) -> str:
    """The module of a ``module.function`` handler string, e.g. ``functions.cloud.aws.entry``."""
    return handler.rpartition(".")[0]


# SCF function URLs (infra/README.md, "Tencent endpoint"): the http trigger the stack binds to the alias
# (infra.clouds.tencent.scf_dynamic) and ``llmfn promote`` to a canary version, by this name and TriggerDesc.
SCF_URL_TRIGGER: Final = "llmfn-url"


def scf_url_trigger_desc() -> str:
    """TriggerDesc of a function URL (doc 583/100227): ``AuthType`` NONE, since llmfn checks its own
    bearer API key (a CAM URL needs Tencent-signed requests, which OpenAI clients cannot send); public
    access on, intranet off; no CORS (browsers are not the clients)."""
    return json.dumps({"AuthType": "NONE", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}})


def scf_url_of_trigger_desc(trigger_desc: str) -> str | None:
    """The public URL in a function URL trigger's ``TriggerDesc`` (a JSON string), None without one.

    The API reference documents what CreateTrigger takes (AuthType, NetConfig, CorsConfig) but not under
    which key an answer carries the URL, so this takes the first ``https://`` / ``http://`` string in it
    whose key path does not say intranet (infra/README.md says how to check on a real account)."""
    try:
        found = _strings(json.loads(trigger_desc))
    except (json.JSONDecodeError, TypeError):
        return None
    urls = [v for k, v in found if "intranet" not in k.lower() and v.startswith(("https://", "http://"))]
    return urls[0] if urls else None


def _strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    """(key path, value) of every string inside a JSON value."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _strings(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [pair for v in value for pair in _strings(v, key)]
    return [(key, value)] if isinstance(value, str) else []
