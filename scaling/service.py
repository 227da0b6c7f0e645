"""How long a request takes on one instance: prefill from input tokens, decode per output token
growing with the batch the instance is running. Defaults are Qwen3-4B-Instruct on an A10G-class GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import ScalingError

# Batch 8 gives 2.3x the throughput of batch 1 (seeds/002, docs/sources.md): 8 / (1 + 7 k) = 2.3.
BATCH8_THROUGHPUT_GAIN = 2.3


@dataclass(frozen=True)
class ServiceModel:
    """Service time = input / prefill_tokens_per_s + output x decode_s_per_token x (1 + k (b - 1)).

    prefill_tokens_per_s: 8000 tok/s: ~8 GFLOP per token for a 4B model at ~64 TFLOPS effective
        bf16 on an A10G; a 30-token "hello" then prefills in 4 ms.
    decode_s_per_token: 0.013 s at batch 1: the 8.04 GB of weights read per token at the A10G's
        600 GB/s; docs/sources.md's seeds/002: 2.1 s for a ~160-token code answer, 120 ms for "hello".
    batch_slowdown (k): per extra request in the batch; (8 / 2.3 - 1) / 7 = 0.354 so that batch 8
        gives 2.3x the throughput of batch 1 (docs/sources.md).
    """

    prefill_tokens_per_s: float = 8000.0
    decode_s_per_token: float = 0.013
    batch_slowdown: float = (8 / BATCH8_THROUGHPUT_GAIN - 1) / 7

    def __post_init__(self) -> None:
        for name in ("prefill_tokens_per_s", "decode_s_per_token"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ScalingError(f"ServiceModel.{name} must be > 0, got {value!r}")
        if not self.batch_slowdown >= 0:
            raise ScalingError(f"ServiceModel.batch_slowdown must be >= 0, got {self.batch_slowdown!r}")

    def prefill_s(self, input_tokens: np.ndarray | float) -> np.ndarray | float:
        """Seconds to the first token once the request runs."""
        return input_tokens / self.prefill_tokens_per_s

    def service_s(
        self,
        input_tokens: np.ndarray | float,
        output_tokens: np.ndarray | float,
        batch: np.ndarray | float = 1,
    ) -> np.ndarray | float:
        """Seconds a request occupies its slot when the instance runs ``batch`` requests (>= 1)."""
        per_token = self.decode_s_per_token * (1 + self.batch_slowdown * (np.maximum(batch, 1) - 1))
        return self.prefill_s(input_tokens) + output_tokens * per_token
