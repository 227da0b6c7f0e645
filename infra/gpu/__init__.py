"""Moved to ``infra.clouds.aws.gpu``; only :mod:`infra.gpu.accelerator` stays, for deployed stacks' state."""
