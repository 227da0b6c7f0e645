"""The kernel every other package may import; it imports nothing of ours (``tests/test_layout.py``).

README.md's layout table places it under every other folder:

- :mod:`core.contract`: every string the stacks, the packagers and the functions must agree on
  (``LLMFN_*`` environment names, entry points, cloud names, the alias);
- :mod:`core.errors`: the one error root, :class:`core.errors.LlmfnError`, carrying ``field``,
  ``value``, ``allowed`` and ``path``, and its branches for bad input;
- :mod:`core.validated`: the one configuration mechanism, frozen pydantic models whose errors are
  one line per bad field;
- :mod:`core.clouds`: the cloud registry, the one table the Pulumi program (``infra/``) and the
  function side (``functions/cloud/``) dispatch through.

It is packed into the function image and zips beside ``functions/``, so nothing here may import a
heavy dependency at import time (pydantic is the one third-party package ``core.validated`` needs).
"""
