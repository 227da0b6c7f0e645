"""The old home of ``infra.clouds.aws.gpu.accelerator``, kept for stacks deployed before the move.

Pulumi stores a dynamic provider in the stack's state by reference (dill pickles a class of an
importable module as module + name), and the provider host imports that module for every later diff,
update and delete. Stacks created before the provider moved hold ``infra.gpu.accelerator``; without
this name their next ``pulumi up`` or ``destroy`` could not load the provider. Their next update
stores the new module, so this can go once no such stack is left (infra/README.md, "Clouds").
"""

from infra.clouds.aws.gpu.accelerator import AcceleratorConfigProvider

__all__ = ["AcceleratorConfigProvider"]
