"""Each cloud's home: ``infra/clouds/<cloud>/`` holds its Pulumi component (``component.py``), its
stack-config rules (``config.py``, a :class:`CloudRules` named ``RULES``) and its image registry
(``registry.py``). The cloud's row in ``core.clouds.CLOUD_PLUGINS`` names them; ``infra.program`` builds
the component and ``infra.config`` applies the rules through that row, so neither names a cloud and
adding one is its folder plus its row (infra/README.md, "Clouds").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.clouds import CloudPlugin, stack_plugin

if TYPE_CHECKING:
    from infra.config import StackConfig
    from infra.image import ImageBuild


class CloudRules:
    """What one cloud refuses in a stack config, beyond the common rules of ``infra.config``.

    Each hook returns problems as whole sentences naming the ``llmfn:`` key, its value and what is
    allowed (joined into one ``StackConfigError``); the defaults refuse nothing, so a cloud overrides
    only what its documents constrain. ``infra.config.StackConfig`` calls them in a fixed order, so the
    message lists problems as it always did.
    """

    default_scaler_handler: str = ""
    """The scaler's entry point when ``llmfn:scalerHandler`` is not set ("" where the image is the scaler)."""
    list_price_per_gb_s: float | None = None
    """Provisioned price (USD per GB-s) when ``llmfn:provisionedPricePerGbS`` is not set; None: unknown."""

    def region_problem(self, region: str) -> str | None:
        """``llmfn:region`` (already shaped like a region id) on this cloud."""
        return None

    def state_bucket_problem(self, bucket: str) -> str | None:
        """``llmfn:scalerStateBucket``: this cloud's bucket-name rule."""
        return None

    def source_problems(self, config: StackConfig) -> list[str]:
        """The model source (checked before the common source rules; any problem stops them)."""
        return []

    def name_problems(self, config: StackConfig) -> list[str]:
        """Names the cloud refuses at deploy although each field's own shape is fine."""
        return []

    def image_uri_problem(self, image_uri: str, region: str) -> str | None:
        """``llmfn:imageUri``: what this cloud's functions can pull."""
        return None

    def environment_problems(self, config: StackConfig) -> list[str]:
        """Limits on the inference function's environment variables."""
        return []

    def package_problems(self, config: StackConfig) -> list[str]:
        """Packages the cloud cannot run (checked before the common one-package rule; any stops it)."""
        return []

    def image_problems(self, config: StackConfig, build: ImageBuild | None, problems: list[str]) -> list[str]:
        """``llmfn:image`` on this cloud, given the map's own ``problems`` (``infra.image.parse_image_build``)."""
        return problems

    def registry_problems(self, config: StackConfig) -> list[str]:
        """The registry settings (``llmfn:imageType``, ``llmfn:registryId``) once the package is chosen."""
        return []

    def shape_problems(self, config: StackConfig) -> list[str]:
        """The instance shape: memory, GPU, concurrency per instance, storage."""
        return []

    def scaling_problems(self, config: StackConfig) -> list[str]:
        """Scaling settings (after the common traffic and bounds rules, before the API key's)."""
        return []

    def gpu_config(self, config: StackConfig) -> Any:
        """``llmfn:gpu`` parsed where this cloud's GPU functions take a map; None elsewhere."""
        return None


def rules_for(cloud: str) -> CloudRules:
    """The rules of the stack cloud ``cloud`` (``llmfn:cloud``), through its row in
    ``core.clouds.CLOUD_PLUGINS``. Raises UnknownCloudError naming ``llmfn:cloud`` without a row."""
    rules: CloudRules = row_for(cloud).load_config_rules()
    return rules


def row_for(cloud: str) -> CloudPlugin:
    """The registry row whose stack name (``llmfn:cloud``) is ``cloud``."""
    return stack_plugin(cloud, field="llmfn:cloud")
