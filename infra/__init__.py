"""The Pulumi program (``Pulumi.yaml`` at the repository root) and its components per cloud.

``infra.config`` holds the stack config schema; ``infra.tencent`` and ``infra.aws`` the components;
``infra.program`` picks one from config. Imports only ``core``, ``scaling`` and ``layers`` of ours (``tests/test_layout.py`` checks it).
"""
