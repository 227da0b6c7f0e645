"""The Pulumi program (``Pulumi.yaml`` at the repository root) and each cloud's home.

``infra.config`` holds the stack config schema and its common rules; ``infra.clouds.<cloud>`` each
cloud's component, config rules and image registry (infra/README.md, "Clouds"); ``infra.program``
builds the component of ``llmfn:cloud``'s row of ``core.clouds``. Imports only ``core``, ``scaling``
and ``layers`` of ours (``tests/test_layout.py`` checks it).
"""
