"""Cloud clients shared by the scaler function and ``llmfn promote``: the only code that talks to a cloud.

- :mod:`functions.cloud.types`: what a metric source measures and what an actuator controls, per cloud
  the same (``WindowMetrics``, ``AliasRouting``, ``Capacity``, ``CloudControl``, ``MetricSource``).
- :mod:`functions.cloud.retry`: backoff with jitter on throttling, 5xx and timeouts (tenacity).
- :mod:`functions.cloud.aws`: CloudWatch metrics; Lambda versions / aliases; provisioned concurrency
  through Application Auto Scaling (``RegisterScalableTarget`` min = max = desired).
- :mod:`functions.cloud.tencent`: Tencent Cloud Monitor metrics (namespace ``QCE/SCF_V2``); SCF versions,
  aliases and ``PutProvisionedConcurrencyConfig``.
- :mod:`functions.cloud.state`: the scaler's state object in S3 / COS with conditional writes.
"""
