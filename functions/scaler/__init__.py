"""The scaler function: every minute, read metrics, run the same policy object the simulator runs,
keep its state in S3 / COS, and set the alias version's provisioned capacity.

- :mod:`functions.scaler.settings`: what to scale and how (from flags or the function's environment).
- :mod:`functions.scaler.run`: one tick (``Scaler.run_once``) and how metrics become an ``Observation``.
- :mod:`functions.scaler.handler`: the entry points (SCF timer trigger, EventBridge schedule).
"""
