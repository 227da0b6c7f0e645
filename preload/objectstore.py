"""S3 and Tencent COS objects read by byte range, each range retried on its own, into caller memory.

A ranged ``GetObject`` can fail before its answer (botocore retries those: 5xx, throttling, connection
errors) or in the middle of its body (a reset connection, a short read): botocore does not retry a
body it has started to hand out, so :meth:`ObjectStore.read_into` does. It resumes the range from the
first byte it has not received, up to :data:`RANGE_ATTEMPTS` times, and pins every request to the
object's ETag (``If-Match``), so a range is never stitched together from two versions of an object
("Return the object only if its entity tag (ETag) is the same as the one specified; otherwise, return
a 412 Precondition Failed error": S3 API reference, GetObject, ``If-Match``).

Bytes go straight from the socket into the destination (``StreamingBody.readinto``): a memoryview of a
file mapping for downloads, of the weights' own memory for streamed loads.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

from core.errors import PreloadError
from preload.confine import METADATA_PATTERNS
from preload.jsonfile import parse_json
from preload.plan import INDEX_FILE, SINGLE_FILE

RANGE_BYTES = 16 * 1024 * 1024
"""Size of each ranged GET (16 MiB, the loader's chunk size)."""
RANGE_ATTEMPTS = 4
"""Tries per range (the first and three retries), each resuming where the previous one stopped."""
RETRY_BASE_S = 0.05
"""First back-off before a retry (seconds); doubled after each failed try."""
SCHEMES = ("s3", "cos")


@dataclass(frozen=True)
class ObjectRef:
    """One object of the checkpoint: its key, size in bytes and ETag (as S3 lists it, quotes included)."""

    name: str
    key: str
    size: int
    etag: str


def is_object_store(source: str) -> bool:
    """Whether ``source`` is an ``s3://`` or ``cos://`` URL."""
    return source.startswith(tuple(f"{scheme}://" for scheme in SCHEMES))


def _transient(exc: BaseException) -> bool:
    """Errors worth another try of the same range: the body broke off, the connection failed, 5xx, throttling."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in {"SlowDown", "Throttling", "RequestTimeout"}
    return isinstance(exc, BotoCoreError | OSError)


class ObjectStore:
    """The objects under ``scheme://bucket/prefix`` of S3 or COS (COS through its S3-compatible API).

    ``endpoint_url`` (or ``AWS_ENDPOINT_URL``) selects the endpoint; for ``cos://`` without one,
    ``COS_REGION`` (or ``TENCENTCLOUD_REGION``) gives ``https://cos.<region>.myqcloud.com``.
    ``connections`` is the size of the HTTP connection pool (the most parallel ranges worth running).
    """

    def __init__(self, source: str, endpoint_url: str | None = None, *, connections: int = 32) -> None:
        scheme, _, rest = source.partition("://")
        if scheme not in SCHEMES:
            raise PreloadError(f"source {source!r} is not s3://bucket/prefix or cos://bucket/prefix")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise PreloadError(f"source {source!r} names no bucket; expected {scheme}://bucket/prefix")
        self.scheme = scheme
        self.bucket = bucket
        self.prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        self.client = _client(scheme, endpoint_url, connections)

    def url(self, name: str = "") -> str:
        """``scheme://bucket/prefix/name``: how errors name an object."""
        return f"{self.scheme}://{self.bucket}/{self.prefix}{name}"

    def checkpoint_objects(self) -> tuple[dict[str, ObjectRef], list[str]]:
        """Name -> object for the metadata files and the shards, and the shard names (index order).

        The shards are those ``model.safetensors.index.json`` names, else ``model.safetensors``;
        :class:`PreloadError` names a missing one.
        """
        objects: dict[str, ObjectRef] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(self.prefix) :]
                if name and "/" not in name:
                    objects[name] = ObjectRef(name, obj["Key"], obj["Size"], obj["ETag"])
        if INDEX_FILE in objects:
            body = self.read_bytes(objects[INDEX_FILE], 0, objects[INDEX_FILE].size)
            index = parse_json(body, self.url(INDEX_FILE), "index")
            try:
                shards = sorted(set(index["weight_map"].values()))  # type: ignore[index]
            except (KeyError, TypeError, AttributeError) as exc:
                raise PreloadError(f"index is not valid: {exc}", file=self.url(INDEX_FILE)) from None
        elif SINGLE_FILE in objects:
            shards = [SINGLE_FILE]
        else:
            raise PreloadError(f"no {INDEX_FILE} or {SINGLE_FILE} under the prefix", file=self.url())
        for shard in shards:
            if shard not in objects:
                raise PreloadError(
                    "shard named by the index is missing from the bucket", file=self.url(shard)
                )
        wanted = {
            name: ref
            for name, ref in objects.items()
            if name in shards or any(fnmatch(name, pattern) for pattern in METADATA_PATTERNS)
        }
        return wanted, shards

    def read_into(self, ref: ObjectRef, start: int, view: memoryview) -> None:
        """Fill ``view`` with bytes ``start .. start + len(view)`` of ``ref``, retrying the rest after a fault.

        Each try is one ranged GET pinned to ``ref.etag``; a body that breaks off is resumed from its
        first missing byte. Raises :class:`PreloadError` (naming the object and the offset) after
        :data:`RANGE_ATTEMPTS` failed tries, or at once when the object changed (412).
        """
        from botocore.exceptions import ClientError

        view = view.cast("B") if view.format != "B" else view
        done, total, failures = 0, len(view), 0
        while done < total:
            first, last = start + done, start + total - 1
            try:
                answer = self.client.get_object(
                    Bucket=self.bucket, Key=ref.key, Range=f"bytes={first}-{last}", IfMatch=ref.etag
                )
                body = answer["Body"]
                try:
                    while done < total:
                        got = body.readinto(view[done:])
                        if not got:
                            raise OSError(f"body ended after {done} of {total} B")
                        done += got
                finally:
                    body.close()
            except Exception as exc:
                if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in {
                    "PreconditionFailed",
                    "412",
                }:
                    raise PreloadError(
                        f"object changed while it was read (ETag is no longer {ref.etag})",
                        file=self.url(ref.name),
                        offset=first,
                    ) from None
                failures += 1
                if not _transient(exc) or failures >= RANGE_ATTEMPTS:
                    raise PreloadError(
                        f"ranged GET failed after {failures} tries: {type(exc).__name__}: {exc}",
                        file=self.url(ref.name),
                        offset=first,
                    ) from exc
                time.sleep(RETRY_BASE_S * 2 ** (failures - 1))

    def read_bytes(self, ref: ObjectRef, start: int, end: int) -> bytes:
        """Bytes ``start .. end`` (exclusive) of ``ref``, with the retries of :meth:`read_into`."""
        buffer = bytearray(end - start)
        if buffer:
            self.read_into(ref, start, memoryview(buffer))
        return bytes(buffer)

    def sha256(self, ref: ObjectRef) -> str | None:
        """The object's sha256 when the store knows it: ``x-amz-meta-sha256``, else a full-object
        ``ChecksumSHA256`` (a multipart upload's composite checksum, ``...-N``, is not the file's)."""
        head = self.client.head_object(Bucket=self.bucket, Key=ref.key, ChecksumMode="ENABLED")
        if head.get("Metadata", {}).get("sha256"):
            return str(head["Metadata"]["sha256"]).lower()
        checksum = head.get("ChecksumSHA256")
        if checksum and "-" not in checksum:
            return base64.b64decode(checksum).hex()
        return None


# botocore 1.36+ computes a CRC32 for every PutObject by default (``x-amz-checksum-crc32``, streamed
# bodies as ``Content-Encoding: aws-chunked`` with a trailing checksum) and validates response checksums;
# COS's S3 API does not fully support either, so every COS client asks for them only where an operation
# requires one (botocore's ``request_checksum_calculation`` / ``response_checksum_validation`` options).
COS_CHECKSUMS = {
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}


def cos_client(
    endpoint_url: str | None,
    *,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    connections: int = 10,
    **config: Any,
) -> Any:
    """How preload builds a boto3 client for Tencent COS (streaming and downloads; the scaler's state client,
    ``functions.cloud.connect.CloudTarget.s3_client``, is its twin, since the scaler's package holds no preload):
    :data:`COS_CHECKSUMS` always; ``endpoint_url`` (None: ``https://cos.<region>.myqcloud.com`` from
    ``region``, ``COS_REGION`` or ``TENCENTCLOUD_REGION``); keys (None: boto3's chain); ``config``: more
    ``botocore.config.Config`` options."""
    import boto3
    from botocore.config import Config

    if endpoint_url is None and not os.environ.get("AWS_ENDPOINT_URL"):
        region = region or os.environ.get("COS_REGION") or os.environ.get("TENCENTCLOUD_REGION")
        if not region:
            raise PreloadError(
                "cos:// needs an endpoint: set COS_REGION (e.g. ap-guangzhou) or pass endpoint_url"
            )
        endpoint_url = f"https://cos.{region}.myqcloud.com"
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(max_pool_connections=connections, **COS_CHECKSUMS, **config),
    )


def _client(scheme: str, endpoint_url: str | None, connections: int) -> Any:
    import boto3
    from botocore.config import Config

    if scheme == "cos":
        return cos_client(endpoint_url, connections=connections)
    return boto3.client("s3", endpoint_url=endpoint_url, config=Config(max_pool_connections=connections))
