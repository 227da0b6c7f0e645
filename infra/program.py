"""The Pulumi program: read and validate the stack config, build the chosen cloud's component, export.

``infra/__main__.py`` calls :func:`main`; tests call :func:`build_stack` under Pulumi's mocks.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from core.clouds import plugin
from infra.config import StackConfig, parse_stack_config

COMPONENT_NAME = "llmfn"


def current_raw_config() -> tuple[dict[str, Any], set[str]]:
    """Every config value the engine handed this program, and the keys it holds as secrets."""
    values = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    secret_keys.update(k for k in values if runtime_config.is_config_secret(k))
    return values, secret_keys


def build_stack(config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> pulumi.ComponentResource:
    """The component of ``config.cloud``'s row in :data:`core.clouds.CLOUD_PLUGINS`; its ``outputs`` are
    what the stack exports. A cloud without a row raises UnknownCloudError naming ``llmfn:cloud``."""
    component = plugin(config.cloud, field="llmfn:cloud").load_component()
    return component(COMPONENT_NAME, config, opts)


def main() -> None:
    """Validate the whole config first (no resource exists before it passes), then build and export."""
    raw, secret_keys = current_raw_config()
    config = parse_stack_config(raw, secret_keys)
    stack = build_stack(config)
    for name, value in stack.outputs.items():  # type: ignore[attr-defined]
        pulumi.export(name, value)
