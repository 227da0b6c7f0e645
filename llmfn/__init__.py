"""llmfn: LLM inference on serverless GPU functions, cheaply and fast.

This package holds the command line (``llmfn.commands``) and what runs on a laptop or in CI, never
deployed: ``llmfn.local`` (the local runtime of ``llmfn dev`` and the embedded tiny model) and
``llmfn.release`` (``llmfn promote``). The deployed product lives in the sibling packages ``scaling``
(policies, simulator), ``preload`` (staged checkpoint loading), ``functions`` (the inference app, the
scaler function and its cloud clients), ``layers`` (package builds) and ``infra`` (Pulumi).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmfn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
