"""One declaration per concept (README.md, "Configuration: one mechanism, one name per concept"): each
rule below is declared once in ``core/`` and every reader of the concept applies that same rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError
from functions.settings import ServeSettings
from llmfn.local.config import DevConfig
from llmfn.release.promotion import PromotionPlan
from tests.infra.mocks import example_with, parse_example

TENCENT = "Pulumi.example-tencent.yaml"
SHA = "0123456789abcdef0123456789abcdef01234567"

# What a promotion and the function's settings read: LLMFN_MODEL_REVISION is set by the stack (a sha)
# and by `llmfn promote` (any word), so both take the same word rule.
REVISION_READERS: dict[str, Callable[[str], Any]] = {
    "llmfn promote": lambda rev: PromotionPlan(model_revision=rev),
    "serve settings": lambda rev: ServeSettings(model_source="org/name", model_revision=rev),
    "LLMFN_MODEL_REVISION": lambda rev: ServeSettings.from_env(
        {"LLMFN_MODEL_SOURCE": "org/name", "LLMFN_MODEL_REVISION": rev}
    ),
}


@pytest.mark.parametrize("reader", sorted(REVISION_READERS))
@pytest.mark.parametrize("revision", ["rev-2", SHA, "v1.0", "r" * 128])
def test_a_revision_word_is_read_alike_everywhere(reader: str, revision: str) -> None:
    assert REVISION_READERS[reader](revision).model_revision == revision


@pytest.mark.parametrize("reader", sorted(REVISION_READERS))
@pytest.mark.parametrize("revision", ["rev 2", "rev-2\n", "\trev", "r" * 129, "révision"])
def test_a_revision_that_is_no_word_is_refused_everywhere_by_field(reader: str, revision: str) -> None:
    with pytest.raises(InputError) as caught:
        REVISION_READERS[reader](revision)
    message = str(caught.value)
    assert "model_revision" in message and "1 to 128 visible ASCII characters" in message, message


# The API key: one type (core.secrets.ApiKey) for the stack, the serve settings and `llmfn dev`.
KEY_READERS: dict[str, Callable[[str], Any]] = {
    "llmfn:apiKey": lambda key: parse_example(example_with(TENCENT, apiKey=key)),
    "serve settings": lambda key: ServeSettings.build(engine="null", api_key=key),
    "llmfn dev": lambda key: DevConfig(model_dir=Path("."), engine="null", api_key=key),
}


@pytest.mark.parametrize("reader", sorted(KEY_READERS))
@pytest.mark.parametrize("key", ["sk-ключZq9", "sk-Zq9\u00a0", "k" * 4097 + "Zq9", "sk-\x7fZq9", " "])
def test_an_api_key_is_one_type_refused_alike_by_the_stack_and_the_servers(reader: str, key: str) -> None:
    with pytest.raises(InputError) as caught:
        KEY_READERS[reader](key)
    message = str(caught.value)
    assert "visible ASCII" in message, (reader, message)
    assert "Zq9" not in message, (reader, message)  # the key is never echoed
    assert ("llmfn:apiKey = <secret>" if reader == "llmfn:apiKey" else "api_key") in message, message


@pytest.mark.parametrize(("low", "high"), [(-1, 3), (4, 3)])
def test_reserved_bounds_are_one_declaration_checked_alike(low: int, high: int) -> None:
    """``scaling.bounds.ReservedBounds`` is what the policy config and the hybrid rule check and clamp
    with: the same bad pair is refused by field with the same rule, a good pair clamps alike."""
    from scaling.bounds import BOUNDS_ALLOWED, ReservedBounds
    from scaling.plan import ReservedRule, hourly_schedule
    from scaling.policies import PolicyConfig, hybrid_schedule

    field = "min_reserved" if low < 0 else "max_reserved"
    for build in (
        lambda: ReservedBounds(low, high),
        lambda: ReservedRule(p95_latency_s=1.0, min_reserved=low, max_reserved=high),
        lambda: PolicyConfig(min_reserved=low, max_reserved=high),
    ):
        with pytest.raises(InputError) as caught:  # ScalingError; PolicyConfig's ConfigError
            build()
        assert f"{field} need {BOUNDS_ALLOWED}, got {low}..{high}" in str(caught.value)
    rates = [0.0] * 6 + [100.0] * 18
    rule = ReservedRule(p95_latency_s=1.0, min_reserved=2, max_reserved=5)
    config = PolicyConfig(
        min_reserved=2, max_reserved=5, hybrid={"rates_by_hour": rates, "p95_latency_s": 1.0}
    )
    assert rule.bounds == config.bounds == ReservedBounds(2, 5)
    assert hourly_schedule(rates, rule)[:7] == hybrid_schedule(config)[:7] == [2] * 6 + [5]


def test_cli_defaults_are_the_models_and_the_flag_table_is_the_printers() -> None:
    """``llmfn dev`` / ``plan`` / ``simulate``: each option built by ``llmfn.commands.fields.option``
    defaults to its model field's default (one declaration: ``DevDefaults``, ``ReservedRule``,
    ``SimDefaults``, which ``DevConfig`` and ``Settings`` declare their fields with), and the field ->
    flag table the options are built from is the one ``llmfn.errors`` words errors with."""
    import dataclasses

    from llmfn.commands.fields import FLAGS_OF, model_default
    from llmfn.errors import FLAGS
    from llmfn.local.defaults import DevDefaults
    from scaling.plan import DEFAULT_P95_LATENCY_S, ReservedRule
    from scaling.policies.types import HybridConfig
    from scaling.sim_defaults import SimDefaults
    from scaling.simulate import Settings

    tables: dict[str, tuple[Any, Any, tuple[str, ...]]] = {
        "dev": (DevDefaults, DevConfig, tuple(f.name for f in dataclasses.fields(DevDefaults))),
        "plan": (ReservedRule, ReservedRule, ("headroom", "min_utilisation", "min_reserved", "max_reserved")),
        "simulate": (SimDefaults, Settings, tuple(f.name for f in dataclasses.fields(SimDefaults))),
    }
    for command, (defaults, model, fields) in tables.items():
        assert FLAGS[command] is FLAGS_OF[command]
        for field in fields:
            expected = model_default(model, field)
            assert model_default(defaults, field) == expected, (command, field)
            assert flag_default(command, FLAGS_OF[command][field]) == expected, (command, field)
    assert HybridConfig().p95_latency_s == DEFAULT_P95_LATENCY_S == flag_default("plan", "--p95")


def flag_default(command: str, flag: str) -> Any:
    """The default typer gives ``flag`` of ``llmfn command``."""
    from typer.main import get_command

    from llmfn.cli import app

    group = get_command(app)
    return next(p.default for p in group.commands[command].params if flag in p.opts)  # type: ignore[attr-defined]
