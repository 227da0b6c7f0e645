"""The GPU stack's account preflight (infra/clouds/aws/gpu/preflight.py) against moto's EC2 and the stand-in's
Service Quotas: what it finds missing fails `pulumi preview` with the reason."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from infra.clouds.aws.gpu.config import AwsGpuConfig
from infra.clouds.aws.gpu.preflight import preflight_problems
from tests.cloud.aws_proxy import AwsProxy
from tests.cloud.standins import REGION_AWS


def _vpc(proxy: AwsProxy, egress: str | None) -> tuple[Any, str, str]:
    """A VPC with one private subnet; ``egress``: None, "nat" (default route to a NAT gateway) or
    "endpoints" (ECR interface endpoints plus the S3 gateway endpoint)."""
    ec2 = boto3.client("ec2", region_name=REGION_AWS, endpoint_url=proxy.url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    if egress == "nat":
        public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    if egress == "endpoints":
        for name in ("ecr.api", "ecr.dkr"):
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION_AWS}.{name}",
                                    VpcEndpointType="Interface", SubnetIds=[subnet])  # fmt: skip
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION_AWS}.s3",
                                VpcEndpointType="Gateway", RouteTableIds=[table])  # fmt: skip
    group = ec2.create_security_group(GroupName="gpu", Description="gpu", VpcId=vpc)["GroupId"]
    return ec2, subnet, group


def _gpu(subnet: str, group: str, **changes: Any) -> AwsGpuConfig:
    raw = {"acceleratorMemoryGb": 24, "instanceTypes": ["g6.2xlarge", "g6.xlarge"], "subnetIds": [subnet],
           "securityGroupIds": [group], **changes}  # fmt: skip
    return AwsGpuConfig.model_validate(raw)


@pytest.mark.parametrize("egress", ["nat", "endpoints"])
def test_a_ready_account_passes(aws_proxy: AwsProxy, egress: str) -> None:
    _, subnet, group = _vpc(aws_proxy, egress)
    assert preflight_problems(_gpu(subnet, group), REGION_AWS, aws_proxy.url) == []


def test_a_private_subnet_without_a_way_to_ecr_is_named(aws_proxy: AwsProxy) -> None:
    _, subnet, group = _vpc(aws_proxy, None)
    (problem,) = preflight_problems(_gpu(subnet, group), REGION_AWS, aws_proxy.url)
    assert problem.startswith(f"llmfn:gpu.subnetIds: {subnet} has no default route")
    assert "ecr.api, ecr.dkr" in problem and "S3 gateway endpoint" in problem


def test_a_g_instance_quota_below_three_instances_is_named(aws_proxy: AwsProxy) -> None:
    """Publishing starts three environments: three g6.xlarge (4 vCPUs each) need 12 vCPUs of quota."""
    _, subnet, group = _vpc(aws_proxy, "nat")
    aws_proxy.managed_instances.g_instance_vcpu_quota = 8.0
    (problem,) = preflight_problems(_gpu(subnet, group), REGION_AWS, aws_proxy.url)
    assert "12 vCPUs of g6.xlarge (4 each)" in problem and "ec2/L-DB2E81BA) is 8 vCPUs" in problem
    aws_proxy.managed_instances.g_instance_vcpu_quota = 12.0
    assert preflight_problems(_gpu(subnet, group), REGION_AWS, aws_proxy.url) == []
