"""The contract between stacks, packagers and functions is written once: in core/contract.py.

Scans the source (not a grep: the AST's string constants, so docstrings that mention a name in a
sentence do not count) of the code that writes or reads the contract: ``infra/``, ``layers/``, the
deployed function (``functions/``) and the command line with its local runtime and promotion
(``llmfn/``). Left out: ``preload/`` imports nothing of ours (its one variable, ``LLMFN_CACHE``, is a
local cache path, not a stack setting).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import contract
from core.contract import CLOUD_SPELLINGS, STACK_CLOUD, UnknownCloudError, cloud_name

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("infra", "layers", "functions", "llmfn")
NOT_SCANNED = ("core/contract.py",)
ENV_NAME = re.compile(r"LLMFN_[A-Z0-9_]+")
ENTRY_POINTS = {
    value
    for name, value in vars(contract).items()
    if isinstance(value, str) and name.endswith(("_HANDLER", "_MODULE"))
}


def _sources() -> Iterator[tuple[str, ast.AST]]:
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "__pycache__" in relative or relative.startswith(NOT_SCANNED):
                continue
            yield relative, ast.parse(path.read_text(), filename=relative)


def _strings(tree: ast.AST) -> Iterator[ast.Constant]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def test_the_scan_sees_the_code_that_uses_the_contract() -> None:
    scanned = {name for name, _ in _sources()}
    for expected in (
        "infra/common.py",
        "layers/build.py",
        "functions/scaler/settings.py",
        "functions/image/entry.py",
    ):
        assert expected in scanned


def test_env_names_are_written_only_in_the_contract() -> None:
    repeated = [
        f"{name}:{node.lineno}: {node.value!r}"
        for name, tree in _sources()
        for node in _strings(tree)
        if ENV_NAME.fullmatch(node.value)
    ]
    assert not repeated, "use core.contract's ENV_* names: " + "; ".join(repeated)


def test_entry_points_are_written_only_in_the_contract() -> None:
    assert (
        "functions.cloud.aws.entry.handler" in ENTRY_POINTS
        and "functions.cloud.tencent.entry_web" in ENTRY_POINTS
    )
    repeated = [
        f"{name}:{node.lineno}: {node.value!r}"
        for name, tree in _sources()
        for node in _strings(tree)
        if node.value in ENTRY_POINTS
    ]
    assert not repeated, "use core.contract's entry points: " + "; ".join(repeated)


def test_contract_values_are_written_only_in_the_contract() -> None:
    """The alias name and the reserved-capacity kinds the stacks write and the scaler reads."""
    values = {contract.ALIAS_NAME, *contract.RESERVED_CAPACITIES}
    repeated = [
        f"{name}:{node.lineno}: {node.value!r}"
        for name, tree in _sources()
        for node in _strings(tree)
        if node.value in values
    ]
    assert not repeated, "use core.contract's names: " + "; ".join(repeated)


def _is_spelling(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in CLOUD_SPELLINGS


def test_cloud_spellings_are_mapped_only_in_the_contract() -> None:
    """No hand-written ``{"tencentcloud": "tencent", ...}`` or ``"aws" if c == "aws" else "tencent"``."""
    mappings = []
    for name, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and sum(_is_spelling(key) for key in node.keys) >= 2:
                mappings.append(f"{name}:{node.lineno}: a dict keyed by cloud names")
            if isinstance(node, ast.IfExp) and _is_spelling(node.body) and _is_spelling(node.orelse):
                mappings.append(f"{name}:{node.lineno}: a conditional choosing between cloud names")
    assert not mappings, "use core.contract.cloud_name: " + "; ".join(mappings)


@pytest.mark.parametrize(
    ("spelling", "cloud"),
    [
        ("aws", "aws"),
        ("Lambda", "aws"),
        ("tencent", "tencent"),
        (" tencentcloud ", "tencent"),
        ("SCF", "tencent"),
    ],
)
def test_every_spelling_maps_to_one_cloud(spelling: str, cloud: str) -> None:
    assert cloud_name(spelling) == cloud


def test_an_unknown_cloud_names_the_field_and_the_spellings() -> None:
    with pytest.raises(
        UnknownCloudError,
        match=r"llmfn:cloud must be one of aws, lambda, scf, tencent, tencentcloud, got 'gcp'",
    ):
        cloud_name("gcp", "llmfn:cloud")


def test_the_stack_spellings_are_the_pulumi_provider_names_infra_accepts() -> None:
    """``llmfn:cloud`` takes Pulumi's provider names; each maps back to its canonical cloud."""
    from typing import get_args

    from infra.config import StackConfig

    accepted = set(get_args(StackConfig.model_fields["cloud"].annotation))
    assert accepted == set(STACK_CLOUD.values())
    assert {cloud_name(name) for name in accepted} == set(contract.CLOUDS)
