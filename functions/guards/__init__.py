"""Guards in front of the engine: admission (token bucket + bounded queue), circuit breaker, request
shaping, the complexity fingerprint and session hold. Pure or asyncio-only; no timer threads."""
