"""The defaults of a simulation's settings, written once: ``scaling.simulate.Settings`` declares its fields
with them and ``llmfn simulate``'s options show and apply them (``llmfn.commands.fields``).

Pure constants (no numpy), so the CLI reads them without importing the simulator (scaling/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SLO_P99_S = 2.0  # the seed's SLO: P99 < 2 s
DEFAULT_SLO_PER_1K_TOKENS_S = 0.25
"""b of the length-scaled SLO TTFT <= a + b x input tokens, seconds per 1,000 input tokens: 4,000
tok/s, half the default prefill rate, so a long prompt's own prefill fits with room for queueing."""
DEFAULT_SLO_TPOT_S = 0.1
"""Time per output token target of the goodput, seconds: DistServe's (OSDI '24) chatbot SLO."""


@dataclass(frozen=True)
class SimDefaults:
    """Defaults of ``Settings``' fields that ``llmfn simulate`` has flags for (seconds for ``_s``)."""

    slo_p99_s: float = DEFAULT_SLO_P99_S
    slo_per_1k_tokens_s: float = DEFAULT_SLO_PER_1K_TOKENS_S
    slo_tpot_s: float = DEFAULT_SLO_TPOT_S
    fidelity: str = "auto"
    dispatch: str = "pack"


SIM = SimDefaults()
