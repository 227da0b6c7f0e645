"""Account preconditions of a Lambda Managed Instances GPU stack that an API can tell, checked before
anything is created (``pulumi preview`` fails with the reasons; infra/README.md, "GPU checklist").

- **EC2 G-instance vCPU quota**: "When you publish a function version with a capacity provider, Lambda
  launches Managed Instances ... and starts three execution environments before marking the function
  version ACTIVE" (AWS docs, Lambda Managed Instances scaling), and "Lambda Managed Instances are
  subject to Amazon EC2 service quotas applied to your account" (LMI quotas): the account's "Running
  On-Demand G and VT instances" quota (Service Quotas ``ec2`` / ``L-DB2E81BA``, vCPUs) must hold three
  of the smallest allowed instance type (its ``DefaultVCpus``, EC2 DescribeInstanceTypes).
- **Image pull from the capacity provider's subnets**: the instances pull the function image from ECR,
  so each subnet needs a default route (``0.0.0.0/0``) to a NAT gateway or internet gateway, or the VPC
  needs the ECR interface endpoints (``ecr.api``, ``ecr.dkr``) and the S3 gateway endpoint (ECR keeps
  layers in S3): "Amazon ECR interface VPC endpoints ... you must also create a gateway endpoint for
  Amazon S3" (Amazon ECR user guide, VPC endpoints).

Not checkable by an API without the deployer's own principal: ``lambda:PassCapacityProvider`` for the
deployer (checklist only).
"""

from __future__ import annotations

from typing import Any

from infra.clouds.aws.gpu.config import AwsGpuConfig

G_INSTANCE_QUOTA = ("ec2", "L-DB2E81BA")  # Running On-Demand G and VT instances (vCPUs)
ENVIRONMENTS_AT_PUBLISH = 3
ECR_ENDPOINTS = ("ecr.api", "ecr.dkr")


def _clients(region: str, endpoint_url: str | None) -> tuple[Any, Any]:
    import boto3

    return (
        boto3.client("ec2", region_name=region, endpoint_url=endpoint_url),
        boto3.client("service-quotas", region_name=region, endpoint_url=endpoint_url),
    )


def vcpu_quota_problem(gpu: AwsGpuConfig, ec2: Any, quotas: Any) -> str | None:
    """The G-instance vCPU quota cannot hold three of the smallest allowed instance type."""
    answer = ec2.describe_instance_types(InstanceTypes=gpu.instance_types)["InstanceTypes"]
    vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in answer}
    smallest = min(gpu.instance_types, key=lambda t: vcpus.get(t, 0))
    needed = ENVIRONMENTS_AT_PUBLISH * vcpus[smallest]
    service, code = G_INSTANCE_QUOTA
    quota = float(quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
    if quota >= needed:
        return None
    return (
        f"llmfn:gpu.instanceTypes: publishing starts {ENVIRONMENTS_AT_PUBLISH} execution environments, "
        f"{needed} vCPUs of {smallest} ({vcpus[smallest]} each), but the account's 'Running On-Demand G and "
        f"VT instances' quota ({service}/{code}) is {quota:g} vCPUs; request an increase in Service Quotas"
    )


def image_pull_problems(gpu: AwsGpuConfig, ec2: Any, region: str) -> list[str]:
    """Subnets whose instances could not pull the image: no default route to a NAT or internet
    gateway, and the VPC lacks the ECR interface endpoints plus the S3 gateway endpoint."""
    subnets = ec2.describe_subnets(SubnetIds=gpu.subnet_ids)["Subnets"]
    vpcs = {s["VpcId"] for s in subnets}
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": sorted(vpcs)}])[
        "VpcEndpoints"
    ]
    names = {(e["VpcId"], e["ServiceName"]) for e in endpoints}
    problems = []
    for subnet in subnets:
        vpc = subnet["VpcId"]
        ecr = all((vpc, f"com.amazonaws.{region}.{name}") in names for name in ECR_ENDPOINTS)
        if ecr and (vpc, f"com.amazonaws.{region}.s3") in names:
            continue
        if _has_default_egress(ec2, subnet["SubnetId"], vpc):
            continue
        problems.append(
            f"llmfn:gpu.subnetIds: {subnet['SubnetId']} has no default route (0.0.0.0/0) to a NAT or internet "
            f"gateway and VPC {vpc} lacks the ECR endpoints ({', '.join(ECR_ENDPOINTS)}) with the S3 gateway "
            "endpoint: the GPU instances could not pull the function image"
        )
    return problems


def _has_default_egress(ec2: Any, subnet_id: str, vpc_id: str) -> bool:
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])[
        "RouteTables"
    ] or [  # a subnet without its own table uses the VPC's main one
        t
        for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
        if any(a.get("Main") for a in t.get("Associations", []))
    ]
    return any(
        route.get("DestinationCidrBlock") == "0.0.0.0/0"
        and (route.get("NatGatewayId") or str(route.get("GatewayId", "")).startswith("igw-"))
        for table in tables
        for route in table.get("Routes", [])
    )


def preflight_problems(gpu: AwsGpuConfig, region: str, endpoint_url: str | None = None) -> list[str]:
    """Every account precondition above that does not hold, each naming the config key and the fix."""
    ec2, quotas = _clients(region, endpoint_url)
    problems = image_pull_problems(gpu, ec2, region)
    quota = vcpu_quota_problem(gpu, ec2, quotas)
    return problems + ([quota] if quota else [])
