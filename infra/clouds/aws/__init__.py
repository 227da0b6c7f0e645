"""AWS (Lambda): the component, its stack-config rules, the ECR registry and the GPU functions of Lambda Managed Instances (``gpu/``)."""
