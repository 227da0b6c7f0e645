"""AWS's home on the function side: the ``aws`` row of :data:`core.clouds.CLOUD_PLUGINS` names
:mod:`functions.cloud.aws.connector` (README.md, "Layout").

- :mod:`functions.cloud.aws.entry`: the inference function's Lambda handler (API Gateway HTTP API v2
  events through Mangum; ``core.contract.LAMBDA_INFERENCE_HANDLER``).
- :mod:`functions.cloud.aws.connector`: what :mod:`functions.cloud.connect` dispatches an AWS
  ``CloudTarget`` to (actuator, metric source, the state store's S3 client).
- :mod:`functions.cloud.aws.control`: Lambda versions / aliases; provisioned concurrency through
  Application Auto Scaling (the stack's target's MinCapacity; promote's own target min = max = desired).
- :mod:`functions.cloud.aws.managed_instances`: the reserved floor of a GPU function on Lambda Managed
  Instances (the version's ``MinExecutionEnvironments``).
- :mod:`functions.cloud.aws.metrics`: CloudWatch's Lambda metrics of the alias.
"""
