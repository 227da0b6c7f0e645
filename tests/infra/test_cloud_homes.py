"""Each cloud's home (``infra/clouds/<cloud>/``: component, config rules, registry) and the registry row
that names it (``core.clouds``): a cloud registered only by a row and a folder is validated and built with
no edit in ``infra/config.py`` or ``infra/program.py``, and a cloud without a row is refused by name
(infra/README.md, "Clouds")."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from core.clouds import CLOUD_PLUGINS, CloudPlugin
from core.contract import CLOUD_SPELLINGS, PROVISIONED_CONCURRENCY
from infra.clouds import CloudRules, rules_for
from infra.config import StackConfigError
from infra.program import COMPONENT_NAME, build_stack
from tests.infra.mocks import REPO_ROOT, example_with, parse_example

AWS = "Pulumi.example-aws.yaml"
COMMON = ("infra/config.py", "infra/program.py")

# The third cloud's folder, as a new cloud adds it: its component and its config rules (RULES, found by
# the row's default: the ``config`` module beside the component).
THIRD_COMPONENT = """
BUILT = []


class ThirdStack:
    def __init__(self, name, config, opts):
        BUILT.append((name, config.cloud, config.scaler_entry_point, config.price_per_gb_s))
        self.outputs = {"function": config.function_name}
"""
THIRD_CONFIG = """
from infra.clouds import CloudRules


class ThirdRules(CloudRules):
    default_scaler_handler = "third.scaler"
    list_price_per_gb_s = 0.5

    def region_problem(self, region):
        return None if region.startswith("us-") else "is no region of the third cloud (us-* only)"

    def shape_problems(self, config):
        if config.memory_mb > 4096:
            return [f"llmfn:memoryMb = {config.memory_mb}: the third cloud allows up to 4096 MB"]
        return []


RULES = ThirdRules()
"""


@pytest.fixture
def third_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A cloud ``gcp`` that exists only as a folder (``thirdcloud/``) plus its registry row."""
    folder = tmp_path / "thirdcloud"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "component.py").write_text(textwrap.dedent(THIRD_COMPONENT))
    (folder / "config.py").write_text(textwrap.dedent(THIRD_CONFIG))
    monkeypatch.syspath_prepend(str(tmp_path))
    row = CloudPlugin(
        name="gcp",  # type: ignore[arg-type]
        component="thirdcloud.component:ThirdStack",
        connector="thirdcloud.connect",
        reserved_capacities=(PROVISIONED_CONCURRENCY,),
    )
    monkeypatch.setitem(CLOUD_PLUGINS, "gcp", row)
    yield __import__("thirdcloud.component").component
    for name in ("thirdcloud", "thirdcloud.component", "thirdcloud.config"):
        sys.modules.pop(name, None)


def test_an_unknown_cloud_is_refused_by_name() -> None:
    """``llmfn:cloud`` is checked against the registry's rows by their stack names (a row's canonical
    name, ``tencent``, is not one), in the words it always used."""
    for cloud in ("gcp", "tencent"):
        with pytest.raises(StackConfigError) as raised:
            parse_example(example_with(AWS, cloud=cloud))
        assert str(raised.value) == (
            f"invalid stack configuration: llmfn:cloud = {cloud!r}: Input should be 'tencentcloud' or 'aws'"
        )


def test_a_registered_cloud_is_listed_when_refusing(third_cloud: Any) -> None:
    """The registry decides, not the annotation: a registered row extends what llmfn:cloud takes."""
    with pytest.raises(StackConfigError) as raised:
        parse_example(example_with(AWS, cloud="azure"))
    assert "llmfn:cloud = 'azure': Input should be 'tencentcloud', 'aws' or 'gcp'" in str(raised.value)


def test_a_third_cloud_is_a_row_and_a_folder(third_cloud: Any) -> None:
    """The third cloud's rules are the ones applied (its region and memory rules, not AWS's or SCF's),
    its defaults fill the scaler's entry point and the price, and the program builds its component."""
    with pytest.raises(StackConfigError) as raised:
        parse_example(example_with(AWS, cloud="gcp", region="europe-west1"))
    assert "llmfn:region = 'europe-west1': is no region of the third cloud (us-* only)" in str(raised.value)
    with pytest.raises(StackConfigError) as raised:
        parse_example(example_with(AWS, cloud="gcp", region="us-central1"))
    assert str(raised.value) == (
        "invalid stack configuration: llmfn:memoryMb = 10240: the third cloud allows up to 4096 MB"
    )
    config = parse_example(example_with(AWS, cloud="gcp", region="us-central1", memoryMb=2048))
    assert isinstance(config.rules, CloudRules) and config.rules is rules_for("gcp")
    assert config.aws_gpu is None and config.image_build is None
    stack = build_stack(config)
    assert third_cloud.BUILT == [(COMPONENT_NAME, "gcp", "third.scaler", 0.5)]
    assert stack.outputs == {"function": "qwen3-small-infer"}


def test_the_common_modules_name_no_cloud() -> None:
    """infra/config.py and infra/program.py neither name a cloud in a string nor test ``cloud`` for
    equality or membership (before: 12 ``cloud ==`` checks in infra/config.py): every cloud rule is in its folder, reached through the registry."""
    names = set(CLOUD_SPELLINGS) | set(CLOUD_SPELLINGS.values())
    for rel in COMMON:
        tree = ast.parse((REPO_ROOT / rel).read_text(encoding="utf-8"))
        constants = {
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        assert constants & names == set(), rel
        compared = [
            ast.unparse(n)
            for n in ast.walk(tree)
            if isinstance(n, ast.Compare)
            and any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in n.ops)
            and "cloud" in {getattr(x, "attr", getattr(x, "id", None)) for x in ast.walk(n)}
        ]
        assert compared == [], (rel, compared)


@pytest.mark.parametrize(
    ("old_module", "name"),
    [
        ("infra.gpu.accelerator", "AcceleratorConfigProvider"),
        ("infra.scf_dynamic", "FunctionUrlProvider"),
        ("infra.scf_dynamic", "InstanceConcurrencyProvider"),
    ],
)
def test_providers_in_state_from_before_the_move_still_load(old_module: str, name: str) -> None:
    """Pulumi keeps a dynamic provider in the stack's state as dill bytes naming its module; the
    provider host (a separate process) imports that module on every later diff, update and delete, so
    a stack deployed before the move must still find its providers under their old module names."""
    # the pickle dill writes for a class of an importable module: a global reference, module + name
    reference = f"c{old_module}\n{name}\n.".encode()
    load = (
        "import dill, sys; cls = dill.loads(sys.stdin.buffer.read()); "
        "print(cls.__module__, cls.__name__, cls.__mro__[1].__name__)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", load], input=reference, cwd=REPO_ROOT.parent, env=env,
                            capture_output=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    moved = old_module.replace("infra.gpu", "infra.clouds.aws.gpu").replace(
        "infra.scf_dynamic", "infra.clouds.tencent.scf_dynamic"
    )
    assert result.stdout.decode().split() == [moved, name, "ResourceProvider"]
