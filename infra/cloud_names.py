"""What each cloud accepts as a name: regions, buckets, roles, images, handlers (infra/README.md, "Stack
configuration"). Each rule returns the problem as a phrase (what is allowed) or None, and cites the
document or SDK model it comes from; :mod:`infra.config` names the ``llmfn:`` key and the value.

Every pattern is a full match (``re.fullmatch``): ``$`` also matches before a trailing newline, so
``"qwen3\\n"`` passed every ``^...$`` pattern that ``re.match`` checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import cache


def _full_match_rule(pattern: re.Pattern[str], allowed: str) -> Callable[[str], str | None]:
    """A rule refusing every value that ``pattern`` does not match in full, saying ``allowed``."""

    def problem(value: str) -> str | None:
        return None if pattern.fullmatch(value) else allowed

    return problem


# ----------------------------------------------------------------------------------------- regions

# SCF's regions: the region table of SCF's API "Request Structure" page (tencentcloud.com document
# 583/17237, "1. Service Address": the region ids accepted in X-TC-Region). The installed
# tencentcloud-sdk-python packages (common, scf, monitor) carry no region list of their own: the SDK
# learns regions only by calling DescribeRegions, which validation cannot do offline.
TENCENT_SCF_REGIONS = frozenset(
    {
        "ap-bangkok",
        "ap-beijing",
        "ap-chengdu",
        "ap-chongqing",
        "ap-guangzhou",
        "ap-hongkong",
        "ap-jakarta",
        "ap-mumbai",
        "ap-nanjing",
        "ap-seoul",
        "ap-shanghai",
        "ap-shanghai-fsi",
        "ap-shenzhen-fsi",
        "ap-singapore",
        "ap-tokyo",
        "eu-frankfurt",
        "na-ashburn",
        "na-siliconvalley",
        "na-toronto",
        "sa-saopaulo",
    }
)
# A Tencent availability zone is its region plus "-<number>" ("ap-guangzhou-3"; "地域和可用区",
# document 213/6091): a zone is not a region.
_TENCENT_ZONE = re.compile(r"(?P<region>[a-z]+-[a-z]+)-[0-9]+")


@cache
def aws_lambda_regions() -> frozenset[str]:
    """Every region botocore's endpoint data (its partitions: aws, aws-cn, aws-us-gov, ...) lists for
    Lambda: the SDK's own list of where a Lambda function can be created."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("lambda", partition_name=partition)
    )


def aws_region_problem(region: str) -> str | None:
    """Why ``region`` is no Lambda region (botocore's partitions), or None."""
    known = aws_lambda_regions()
    if region in known:
        return None
    hint = " (it is a Tencent Cloud region)" if region in TENCENT_SCF_REGIONS else ""
    return (
        f"is not an aws region{hint}; use one of the {len(known)} Lambda regions of botocore's partitions, "
        "e.g. us-east-1, eu-west-1"
    )


def scf_region_problem(region: str) -> str | None:
    """Why ``region`` is no SCF region (a zone such as ap-guangzhou-3 is not one), or None."""
    if region in TENCENT_SCF_REGIONS:
        return None
    zone = _TENCENT_ZONE.fullmatch(region)
    if zone and zone["region"] in TENCENT_SCF_REGIONS:
        return f"is an availability zone of {zone['region']}, not a region: set {zone['region']}"
    hint = " (it is an AWS region)" if region in aws_lambda_regions() else ""
    return f"is not a tencentcloud region{hint}; use one of SCF's regions: {', '.join(sorted(TENCENT_SCF_REGIONS))}"


# ----------------------------------------------------------------------------------------- buckets

# Amazon S3 User Guide, "General purpose bucket naming rules": "Bucket names must not start with the
# prefix xn--." / "... sthree-." / "... amzn-s3-demo-." and "must not end with the suffix -s3alias."
# / "--ol-s3." / ".mrap." / "--x-s3." / "--table-s3."
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# "Bucket names can consist only of lowercase letters, numbers, periods (.), and hyphens (-)." /
# "Bucket names must begin and end with a letter or number." / "must be between 3 (min) and 63 (max)"
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def s3_prefix_problem(prefix: str) -> str | None:
    """Why S3 refuses every bucket named ``prefix...`` (the reserved prefixes), or None."""
    for reserved in S3_RESERVED_PREFIXES:
        if prefix.startswith(reserved):
            return (
                f"starts with {reserved!r}, a prefix S3 refuses in bucket names "
                f"({', '.join(S3_RESERVED_PREFIXES)} are reserved)"
            )
    return None


def s3_bucket_problem(name: str) -> str | None:
    """Why S3 refuses ``name`` as a general purpose bucket name, or None (S3 bucket naming rules)."""
    if not _S3_BUCKET.fullmatch(name):
        return (
            "must be 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
        )
    if ".." in name:  # "Bucket names must not contain two adjacent periods."
        return "must not contain two adjacent periods"
    try:  # "Bucket names must not be formatted as an IP address (for example, 192.168.5.4)."
        ipaddress.IPv4Address(name)
        return "must not be formatted as an IP address"
    except ValueError:
        pass
    for reserved in S3_RESERVED_SUFFIXES:
        if name.endswith(reserved):
            return f"ends with {reserved!r}, a suffix S3 reserves ({', '.join(S3_RESERVED_SUFFIXES)})"
    return s3_prefix_problem(name)


# COS, "存储桶概述" (document 436/13312), 命名规范: a bucket is "<BucketName-APPID>"; the custom part
# "仅支持小写英文字母和数字，即[a-z，0-9]、中划线“-”及其组合", "支持1 - 50个字符", "不能以“-”开头或结尾";
# the APPID is the account's numeric id (e.g. 1250000000).
_COS_BUCKET = re.compile(r"(?P<name>[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?)-(?P<appid>[0-9]{5,20})")


cos_bucket_problem = _full_match_rule(
    _COS_BUCKET,
    (
        "must be a COS bucket '<name>-<appid>' (e.g. llmfn-state-1250000000): the name 1-50 lowercase "
        "letters, digits and '-', not starting or ending with '-', then '-' and the numeric APPID"
    ),
)
"""Why COS refuses a bucket name (``<bucketname>-<appid>``), or None."""


# ------------------------------------------------------------------------------- names and handlers

# SCF's names: the SDK model's FunctionName / LayerName rule ("支持26个英文字母大小写、数字、连接符和下划线，
# 第一个字符只能以字母开头，最后一个字符不能为连接符或者下划线", tencentcloud scf v20180416 models,
# CreateFunctionRequest.FunctionName, length 2-60), which the console applies to namespaces too.
_SCF_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]")


scf_namespace_problem = _full_match_rule(
    _SCF_NAMESPACE,
    ("must be 2-60 letters, digits, '-' and '_', starting with a letter and ending with a letter or digit"),
)
"""Why SCF refuses a namespace, or None."""


# CAM CreateRole, RoleName: "角色名称" — CAM's role names take letters, digits and "+=,.@_-", at most 128
# characters (CAM user guide, "创建角色").
_CAM_ROLE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,128}")


cam_role_problem = _full_match_rule(
    _CAM_ROLE,
    "must be a CAM role name: 1-128 letters, digits and '+=,.@_-'",
)
"""Why CAM refuses a role name, or None."""


# TCR Enterprise instance ids are "tcr-" and 8 lowercase letters or digits (TCR API, DescribeInstances,
# RegistryId, e.g. "tcr-xxxxxxxx").
_TCR_INSTANCE = re.compile(r"tcr-[a-z0-9]{8}")


tcr_instance_problem = _full_match_rule(
    _TCR_INSTANCE,
    ("must be a TCR Enterprise instance id: 'tcr-' and 8 lowercase letters or digits (e.g. tcr-ab12cd34)"),
)
"""Why a registry id is no TCR Enterprise instance id, or None."""


# Lambda CreateFunction, Handler: botocore's model "max": 128, "pattern": "[^\s]+".
LAMBDA_HANDLER_MAX_CHARS = 128
_LAMBDA_HANDLER = re.compile(r"[^\s]{1,128}")


def lambda_handler_problem(handler: str) -> str | None:
    """Why Lambda refuses ``handler`` (botocore's Handler shape), or None."""
    if _LAMBDA_HANDLER.fullmatch(handler):
        return None
    return f"must be 1-{LAMBDA_HANDLER_MAX_CHARS} characters without whitespace (Lambda's Handler), e.g. module.function"


# ------------------------------------------------------------------------------------------ images

# "Lambda supports images stored in Amazon ECR"; "The Amazon ECR repository must be in the same AWS
# Region as the Lambda function" (Lambda Developer Guide, "Create a Lambda function using a container
# image", Requirements). ECR registry host: <account>.dkr.ecr.<region>.amazonaws.com[.cn].
_ECR_IMAGE = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*)(?::[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})"
)


def ecr_image_problem(uri: str, region: str) -> str | None:
    """Why Lambda refuses ``uri`` for a function in ``region``, or None."""
    found = _ECR_IMAGE.fullmatch(uri)
    if found is None:
        return (
            "must be an Amazon ECR image, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag> or "
            "@sha256:<digest> (Lambda runs images from ECR only)"
        )
    if found["region"] != region:
        return (
            f"is in ECR region {found['region']}, the function in {region}: the ECR repository must be in "
            "the function's region"
        )
    return None


# SCF reports an image as "repo:tag@sha256:digest" (GetFunction's ImageConfig.ImageUri): a tag alone is
# re-resolved by the provider on every `pulumi up` and UpdateFunctionCode is called each time.
_SCF_IMAGE = re.compile(
    r"[a-z0-9][a-z0-9.-]*(?::[0-9]+)?/[a-z0-9._/-]+:[\w][\w.-]{0,127}@sha256:[0-9a-f]{64}"
)


scf_image_problem = _full_match_rule(
    _SCF_IMAGE,
    (
        "must pin the image as <registry>/<namespace>/<repo>:<tag>@sha256:<digest> (as SCF reports it; a "
        "tag alone re-resolves and re-deploys the code on every `pulumi up`): `docker buildx imagetools "
        "inspect <image>` prints the digest"
    ),
)
"""Why an image reference is not pinned as SCF reports it, or None."""


# ------------------------------------------------------------------------------- EC2 instance sizes

# EC2 instance size names: "xlarge" is 4 vCPUs and "<n>xlarge" 4n vCPUs, "large" 2, "medium" 1 (Amazon EC2
# Instance Types, "Accelerated computing" specifications: g6.xlarge 4 vCPUs, g6.2xlarge 8, g5.12xlarge
# 48, p5.48xlarge 192).
_SIZE = re.compile(r"[a-z0-9-]+\.(?:(?P<n>[0-9]*)xlarge|(?P<small>large|medium))")


def instance_vcpus(instance_type: str) -> int | None:
    """vCPUs of an EC2 instance type from its size name, None when the size is not a standard one."""
    found = _SIZE.fullmatch(instance_type)
    if found is None:
        return None
    if found["small"]:
        return 2 if found["small"] == "large" else 1
    return 4 * int(found["n"] or 1)
