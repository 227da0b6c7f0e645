"""The scaler function: every minute, read metrics, run the same policy object the simulator runs,
keep its state in S3 / COS, and set the reserved floor: on AWS the MinCapacity of the stack's
scalable target on the alias (tracking acts above it), on SCF the provisioned config of the version
the alias points at. It is the one writer of that setting (infra/README.md, "One owner per setting").

- :mod:`functions.scaler.settings`: what to scale and how (from flags or the function's environment).
- :mod:`functions.scaler.run`: one tick (``Scaler.run_once``) and how metrics become an ``Observation``.
- :mod:`functions.scaler.handler`: the entry points (SCF timer trigger, EventBridge schedule).
"""
