"""Tencent Cloud's home on the function side: the ``tencent`` row of :data:`core.clouds.CLOUD_PLUGINS`
names :mod:`functions.cloud.tencent.connector` (README.md, "Layout").

- :mod:`functions.cloud.tencent.entry_web`: the SCF web / image function (uvicorn on 0.0.0.0:9000;
  ``python -m``, ``core.contract.SCF_WEB_MODULE``); with ``LLMFN_ROLE=scaler`` the scaler's events.
- :mod:`functions.cloud.tencent.entry_event`: the SCF event function behind API gateway (event dict in,
  response dict out; ``core.contract.SCF_EVENT_HANDLER``).
- :mod:`functions.cloud.tencent.connector`: what :mod:`functions.cloud.connect` dispatches a Tencent
  ``CloudTarget`` to (actuator, metric source, the state store's client of COS's S3 API).
- :mod:`functions.cloud.tencent.control`: SCF versions, aliases and ``PutProvisionedConcurrencyConfig``.
- :mod:`functions.cloud.tencent.metrics`: Tencent Cloud Monitor metrics (namespace ``QCE/SCF_V2``).
- :mod:`functions.cloud.tencent.state`: the scaler's state on COS (create-only first write, then plain
  PUTs: COS has no conditional PUT).
"""
