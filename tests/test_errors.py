"""One error hierarchy: every exception class of ours derives from a root, and one printer words them.

The root and its branches: ``core.errors``'s module docstring.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InputError, LlmfnError, PreloadError, ScalingError
from functions.errors import APIError
from llmfn.errors import FLAGS, ROOTS, USER_ERRORS, FieldError, cli_message, command_of

PACKAGES = ("core", "functions", "infra", "layers", "llmfn", "preload", "scaling")
REPO_ROOT = Path(__file__).resolve().parents[1]


def _our_modules() -> list[str]:
    """Every module of our packages except the ``__main__`` scripts (importing one runs it)."""
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        names += [info.name for info in pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [name for name in names if not name.endswith(".__main__")]


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for name in _our_modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == name and issubclass(obj, BaseException):
                found.append(obj)
    return found


def test_every_exception_class_of_ours_derives_from_a_root() -> None:
    classes = _exception_classes()
    names = {f"{c.__module__}.{c.__qualname__}" for c in classes}
    # the walk really sees the classes (a walk that finds nothing would pass vacuously)
    assert {
        "functions.cloud.types.CloudError",
        "infra.config.StackConfigError",
        "scaling.traces.TraceFormatError",
    } <= names
    orphans = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, ROOTS))
    assert orphans == []


def test_each_package_raises_only_its_own_root() -> None:
    """The preload's classes are PreloadErrors, the scaling core's ScalingErrors, the rest LlmfnErrors."""
    for cls in _exception_classes():
        if cls.__module__.startswith("preload."):
            assert issubclass(cls, PreloadError), cls
        elif cls.__module__.startswith("scaling."):
            assert issubclass(cls, ScalingError), cls
        else:
            assert issubclass(cls, LlmfnError), cls


def test_one_root_and_bad_input_is_one_branch() -> None:
    """README "Errors": one root for every package; the scaling core's and the preload's errors are
    bad input (``InputError``), and SettingsError inherits the root once (no ``__init__`` of its own)."""
    from core.validated import ConfigError
    from functions.settings import SettingsError

    assert len(ROOTS) == 1 and ROOTS[0] is LlmfnError
    for branch in (ScalingError, PreloadError, ConfigError, SettingsError):
        assert issubclass(branch, InputError) and issubclass(branch, LlmfnError), branch
    assert "__init__" not in vars(SettingsError)
    problems = ((("port",), "too big"),)
    error = SettingsError("too big", problems, field="port", value=1)
    assert (error.field, error.value, error.problems, str(error)) == ("port", 1, problems, "port too big")
    located = PreloadError("bad dtype", file="m.safetensors", tensor="w", offset=8, field="dtype")
    assert str(located) == "dtype bad dtype (file m.safetensors, tensor 'w', offset 8)"
    assert (located.path, located.message) == ("m.safetensors", "bad dtype")


@pytest.mark.parametrize(
    "error",
    [
        InputError(
            "must be >= 1, got 0", field="max_instances", value=0, allowed="an integer >= 1", path="c.json"
        ),
        PreloadError("bad dtype", file="m.safetensors", field="dtype", value="F8", allowed="F16, BF16, F32"),
        ScalingError("must be >= 1, got 0", field="max_instances", value=0, allowed=">= 1", path="p.json"),
    ],
)
def test_the_roots_share_one_field_carrying_shape(error: Exception) -> None:
    assert isinstance(error, FieldError) and isinstance(error, ValueError) and isinstance(error, USER_ERRORS)
    assert (error.field, error.value, error.allowed) != (None, None, None)  # type: ignore[attr-defined]
    assert error.path is not None  # type: ignore[attr-defined]


def test_str_puts_the_field_first_and_keeps_the_message_apart() -> None:
    error = ScalingError("must be >= 1, got 0", field="max_instances")
    assert str(error) == "max_instances must be >= 1, got 0" and error.message == "must be >= 1, got 0"
    assert str(InputError("no such stack")) == "no such stack"


def test_the_printer_words_fields_as_the_flags_of_the_command_that_ran() -> None:
    error = InputError(
        "5 exceeds max_instances 2: the reserved workers must fit in the quota", field="reserved"
    )
    assert (
        cli_message(error, "dev")
        == "--reserved 5 exceeds --max 2: the reserved workers must fit in the quota"
    )
    # the same field is another flag in another command; a command without the field keeps the name
    assert cli_message(ScalingError("must be >= 0", field="max_reserved"), "plan") == "--max must be >= 0"
    assert cli_message(ScalingError("must be >= 0", field="max_instances"), "dev") == "--max must be >= 0"
    assert (
        cli_message(ScalingError("must be >= 0", field="max_instances"), "simulate")
        == "max_instances must be >= 0"
    )
    # a field name inside the user's data (quoted, in a path, in a longer word) is not rewritten
    assert (
        cli_message(InputError("no such file /srv/host/port.json"), "dev")
        == "no such file /srv/host/port.json"
    )
    assert cli_message(InputError("must be >= 1", field="port"), "dev") == "--port must be >= 1"


def test_every_flag_in_the_table_is_a_flag_of_its_command() -> None:
    from typer.main import get_command

    from llmfn.cli import app

    group = get_command(app)
    for command, table in FLAGS.items():
        options = {opt for param in group.commands[command].params for opt in param.opts}  # type: ignore[attr-defined]
        assert set(table.values()) <= options, command


def test_command_of_is_the_first_word() -> None:
    assert command_of(["plan", "--min", "3"]) == "plan" and command_of(["--version"]) is None


def test_bugs_keep_their_traceback() -> None:
    """A plain ValueError (or KeyError) is a bug, not bad input: the printer does not swallow it."""
    assert not isinstance(ValueError("x"), USER_ERRORS) and not isinstance(KeyError("x"), USER_ERRORS)
    # run-time signals of ours are not input errors either
    assert not isinstance(APIError(503, "busy"), USER_ERRORS)


def test_the_cli_prints_a_library_field_as_the_users_flag() -> None:
    """End to end: DevConfig names ``max_instances``; ``llmfn dev --max 0`` says ``--max``, exit 2."""
    out = subprocess.run(
        [sys.executable, "-m", "llmfn", "dev", "--max", "0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 2, out.stderr
    assert "\nerror: --max must be an integer >= 1, got 0\n" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
