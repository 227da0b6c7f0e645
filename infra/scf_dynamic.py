"""The old home of ``infra.clouds.tencent.scf_dynamic``, kept for stacks deployed before the move.

Pulumi stores a dynamic provider in the stack's state by reference (dill pickles a class of an
importable module as module + name), and the provider host imports that module for every later diff,
update and delete. Stacks created before the providers moved hold ``infra.scf_dynamic``; without this
name their next ``pulumi up`` or ``destroy`` could not load the providers. Their next update stores the
new module, so this can go once no such stack is left (infra/README.md, "Clouds").
"""

from infra.clouds.tencent.scf_dynamic import FunctionUrlProvider, InstanceConcurrencyProvider

__all__ = ["FunctionUrlProvider", "InstanceConcurrencyProvider"]
