"""The inference function's environment, as the stack sets it on either cloud (infra/README.md).

Its own module so that :mod:`infra.config` can check it against Lambda's 4 KB limit at validation
without importing :mod:`infra.common` (which imports the config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import contract as c

if TYPE_CHECKING:
    from infra.config import StackConfig


def model_environment(config: StackConfig) -> dict[str, str]:
    """Environment of the inference function (the names ``functions/`` reads), without secrets."""
    env = {
        c.ENV_MODEL_SOURCE: config.model_source,
        c.ENV_MODEL_NAME: config.model_repo or config.model_source,
        c.ENV_ENGINE: config.engine,
        c.ENV_MAX_CONCURRENCY: str(config.concurrency_per_instance),
    }
    if config.model_revision is not None:
        env[c.ENV_MODEL_REVISION] = config.model_revision
    if config.public:  # llmfn:public: the entry points refuse to serve without a key unless told so
        env[c.ENV_PUBLIC] = "1"
    return env
