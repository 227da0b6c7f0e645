"""The scaler's state between invocations: one small JSON object in S3 (or COS through its S3 API).

On S3 writes are conditional, so two runs that overlap never overwrite each other's state: the first
write uses ``If-None-Match: *`` (create only), every later one ``If-Match: <ETag read>``. A write that
loses the race gets HTTP 412 (or 409 on a concurrent conditional write) and raises
:class:`StateConflict`; the caller re-reads and decides again.

COS (``cos=True``) has no conditional PUT: its PUT Object lists no ``If-Match`` / ``If-None-Match``
request headers, and "如果试图添加已存在的同名对象，则新上传的对象将覆盖原来的对象" (COS API, PUT Object).
Sending ``If-Match`` there would only look safe. So on COS the first write carries
``x-cos-forbid-overwrite: true`` (COS's own create-only header: an existing object answers 409, a
:class:`StateConflict`), and later writes are plain PUTs. They need no condition because SCF runs the
scaler single-flight: the stack gives the scaler function a reserved concurrency equal to its memory
(``infra/tencent.py``), and "The reserved quota is the upper limit of the function concurrency quota"
(SCF, Reserved Concurrency, doc 583/39464; one event-function instance serves one invocation), so two
ticks never overlap; a re-delivered timer event is still recognised by the tick it names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.errors import LlmfnError
from functions.cloud.retry import RetryPolicy
from functions.cloud.types import CloudError

_CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict")


class StateConflict(LlmfnError, RuntimeError):
    """Another writer changed the state object since it was read."""


@dataclass(frozen=True)
class StoredState:
    """A state document as read: ``document`` is None when no state exists yet; ``etag`` its version."""

    document: dict[str, Any] | None
    etag: str | None


def _is_transient(error: BaseException) -> bool:
    from functions.cloud.aws.control import is_transient

    return is_transient(error) and not _is_conflict(error)


def _is_conflict(error: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") in _CONFLICT_CODES
        or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412)
    )


@dataclass
class S3StateStore:
    """``s3://bucket/key`` through ``client`` (a boto3 S3 client; for COS, one whose endpoint_url is
    ``https://cos.<region>.myqcloud.com`` with the SecretId / SecretKey as access keys)."""

    client: Any
    bucket: str
    key: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cos: bool = False  # COS's S3 API: create-only first write, then unconditional (see the module)

    def load(self) -> StoredState:
        """The current document and its ETag (``StoredState(None, None)`` when absent)."""
        from botocore.exceptions import ClientError

        def get() -> StoredState:
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return StoredState(None, None)
                raise
            return StoredState(json.loads(answer["Body"].read()), answer["ETag"])

        try:
            return self.retry.call("GetObject", get, _is_transient)
        except ClientError as error:
            raise CloudError("GetObject", error.response["Error"].get("Code", "?"), str(error)) from error

    def save(self, document: dict[str, Any], etag: str | None) -> str:
        """Write ``document`` if the object is still at ``etag`` (absent when None); returns the new ETag."""
        from botocore.exceptions import ClientError

        condition = {} if self.cos else {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        body = json.dumps(document, sort_keys=True).encode()

        def forbid_overwrite(request: Any, **_: Any) -> None:
            request.headers["x-cos-forbid-overwrite"] = "true"

        def put() -> str:
            if self.cos and etag is None:
                self.client.meta.events.register("before-sign.s3.PutObject", forbid_overwrite)
            try:
                answer = self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
                )
            finally:
                self.client.meta.events.unregister("before-sign.s3.PutObject", forbid_overwrite)
            return str(answer["ETag"])

        try:
            return self.retry.call("PutObject", put, _is_transient)
        except ClientError as error:
            if _is_conflict(error):
                raise StateConflict(f"s3://{self.bucket}/{self.key} changed since it was read") from error
            raise CloudError("PutObject", error.response["Error"].get("Code", "?"), str(error)) from error
