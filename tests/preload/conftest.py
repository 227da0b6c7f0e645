"""Fixtures of the preload suite: an S3 bucket on moto's server and a fault proxy in front of it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.preload.s3_faults import S3FaultProxy

BUCKET = "llmfn-preload-models"


@pytest.fixture
def s3(moto_server_url: str, monkeypatch: pytest.MonkeyPatch):  # -> botocore S3 client
    """An S3 client on the shared moto server with an empty ``llmfn-preload-models`` bucket."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("s3", endpoint_url=moto_server_url)
    if any(b["Name"] == BUCKET for b in client.list_buckets().get("Buckets", [])):  # only this suite's bucket
        for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
        client.delete_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket=BUCKET)
    return client


def upload(client, repo_dir: Path, prefix: str, *, with_sha256: bool) -> None:
    """Put every file of ``repo_dir`` under ``prefix``, with ``x-amz-meta-sha256`` when asked."""
    for path in sorted(p for p in repo_dir.iterdir() if p.is_file()):
        data = path.read_bytes()
        extra = {"Metadata": {"sha256": hashlib.sha256(data).hexdigest()}} if with_sha256 else {}
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.name}", Body=data, **extra)


@pytest.fixture
def s3_faults(moto_server_url: str) -> Iterator[S3FaultProxy]:
    proxy = S3FaultProxy(moto_server_url).start()
    yield proxy
    proxy.stop()
