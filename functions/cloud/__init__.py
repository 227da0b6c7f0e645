"""Each cloud's home on the function side: its entry points, and the cloud clients shared by the scaler
function and ``llmfn promote`` (the only code that talks to a cloud's API).

Cloud-neutral here; each cloud's own modules live in its package (README.md, "Layout"), whose connector
its row of :data:`core.clouds.CLOUD_PLUGINS` names.

- :mod:`functions.cloud.types`: what a metric source measures and what an actuator controls, per cloud
  the same (``WindowMetrics``, ``AliasRouting``, ``Capacity``, ``CloudControl``, ``MetricSource``).
- :mod:`functions.cloud.retry`: backoff with jitter on throttling, 5xx and timeouts (tenacity).
- :mod:`functions.cloud.connect`: ``CloudTarget`` (which function on which cloud) and the dispatch to its
  cloud's connector through the registry.
- :mod:`functions.cloud.state`: the scaler's state object in S3 / COS with conditional writes.
- :mod:`functions.cloud.aws`: the Lambda entry point; Lambda control (and Managed Instances' floor),
  CloudWatch metrics.
- :mod:`functions.cloud.tencent`: the SCF entry points (web / image function, event function); SCF
  control, Tencent Cloud Monitor metrics, the state store's COS writes.

The entry points are configured by ``LLMFN_*`` environment variables (``functions.settings``); their
names are written once, in ``core.contract``.
"""
