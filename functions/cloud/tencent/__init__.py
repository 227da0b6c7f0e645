"""Tencent Cloud's home on the function side: the ``tencent`` row of :data:`core.clouds.CLOUD_PLUGINS`
names :mod:`functions.cloud.tencent.connector` (README.md, "Layout").

- :mod:`functions.cloud.tencent.connector`: what :mod:`functions.cloud.connect` dispatches a Tencent
  ``CloudTarget`` to (actuator, metric source, the state store's client of COS's S3 API).
- :mod:`functions.cloud.tencent.control`: SCF versions, aliases and ``PutProvisionedConcurrencyConfig``.
- :mod:`functions.cloud.tencent.metrics`: Tencent Cloud Monitor metrics (namespace ``QCE/SCF_V2``).
"""
