"""The stack builds and pushes the function image when ``llmfn:image`` says so (Pulumi mocks): on
Tencent Cloud to a namespace and repository it creates in the TCR Enterprise instance, with a TCR token
for the push, and the function references the pushed digest."""

from __future__ import annotations

from typing import Any

import pytest

from infra.clouds.tencent.component import TencentInferenceStack
from infra.common import published_description
from infra.config import StackConfigError
from tests.infra.mocks import IMAGE_DIGEST, StackRun, example_with, parse_example, plain, run_stack

TENCENT = "Pulumi.example-tencent.yaml"
REGISTRY = "tcr-abcd1234"
SERVER = "llmfn-demo.tencentcloudcr.com"
BUILD = {"target": "gpu", "tag": "0.1.0", "registryServer": SERVER}


def _tencent(**changes: Any) -> dict[str, Any]:
    values = {"imageUri": None, "image": BUILD, "imageType": "enterprise", "registryId": REGISTRY} | changes
    return example_with(TENCENT, **values)


@pytest.fixture(scope="module")
def built() -> StackRun:
    return run_stack(_tencent())


def test_tcr_namespace_repository_token_and_image(built: StackRun) -> None:
    namespace = built.one("tencentcloud:Tcr/namespace:Namespace").inputs
    assert (namespace["instanceId"], namespace["name"]) == (REGISTRY, "qwen3-4b")
    repository = built.one("tencentcloud:Tcr/repository:Repository").inputs
    assert (repository["instanceId"], repository["namespaceName"], repository["name"]) == (
        REGISTRY,
        "qwen3-4b",
        "serve",
    )
    assert built.one("tencentcloud:Tcr/token:Token").inputs["instanceId"] == REGISTRY
    image = built.one("docker-build:index:Image").inputs
    assert image["tags"] == [f"{SERVER}/qwen3-4b/serve:0.1.0"]
    assert image["push"] is True and image["platforms"] == ["linux/amd64"] and image["target"] == "gpu"
    registries = image["registries"]
    registries = registries.get("value", registries)  # a secret password wraps the list
    assert registries == [{"address": SERVER, "username": "100012345678", "password": "tcr-token"}]


def test_function_runs_the_pushed_digest_on_port_9000(built: StackRun) -> None:
    function = next(
        r.inputs for r in built.of_type("tencentcloud:Scf/function:Function") if r.name == "llmfn-function"
    )
    (image,) = function["imageConfigs"]
    assert image["imageUri"] == f"{SERVER}/qwen3-4b/serve:0.1.0@{IMAGE_DIGEST}"
    assert (image["imageType"], image["registryId"], image["imagePort"]) == ("enterprise", REGISTRY, 9000)
    env = plain(function["environment"])
    assert (env["LLMFN_ENGINE"], env["LLMFN_MODEL_SOURCE"]) == ("vllm", "Qwen/Qwen3-4B-Instruct-2507")
    assert function["tags"]["llmfn-gpu"] == "A10"
    version = built.one("tencentcloud:Scf/functionVersion:FunctionVersion").inputs
    # the version's description carries the pushed digest's hash: a new digest publishes a new version
    config = parse_example(_tencent())
    frozen = TencentInferenceStack._frozen(config, image["imageUri"])
    assert version["description"] == published_description(config, frozen)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"imageType": None, "registryId": None}, "llmfn:imageType = enterprise and llmfn:registryId"),
        (
            {"image": {"tag": "0.1.0"}},
            "llmfn:image.registryServer is required with llmfn:cloud = tencentcloud",
        ),
        ({"image": {**BUILD, "target": "tpu"}}, "llmfn:image.target = 'tpu'"),
        ({"image": {**BUILD, "registryServer": "not a host"}}, "llmfn:image.registryServer = 'not a host'"),
        # the TCR namespace is the stack's name: "Valid length is [2~30]" (tcr.Namespace)
        ({"name": "a" * 31}, "llmfn:name = '" + "a" * 31 + "' is 31 characters"),
    ],
)
def test_bad_image_build_config_names_the_key(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(StackConfigError) as raised:
        parse_example(_tencent(**changes))
    assert fragment in str(raised.value), str(raised.value)
