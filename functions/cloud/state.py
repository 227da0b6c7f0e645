"""The scaler's state between invocations: one small JSON object in S3 (or COS through its S3 API).

On S3 writes are conditional, so two runs that overlap never overwrite each other's state: the first
write uses ``If-None-Match: *`` (create only), every later one ``If-Match: <ETag read>``. A write that
loses the race gets HTTP 412 (or 409 on a concurrent conditional write) and raises
:class:`StateConflict`; the caller re-reads and decides again.

A cloud whose store writes otherwise subclasses :class:`S3StateStore` in its package and its connector's
``state_store`` returns it: COS, which has no conditional PUT, is
:class:`functions.cloud.tencent.state.CosStateStore`.
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
    """``s3://bucket/key`` through ``client`` (a boto3 S3 client)."""

    client: Any
    bucket: str
    key: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def write_condition(self, etag: str | None) -> dict[str, str]:
        """PutObject's condition: create only (``If-None-Match: *``) when ``etag`` is None, else
        ``If-Match: <etag>``."""
        return {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}

    def write_headers(self, etag: str | None) -> dict[str, str]:
        """Request headers a write adds that botocore's model has no parameter for (none on S3)."""
        return {}

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

        condition = self.write_condition(etag)
        headers = self.write_headers(etag)
        body = json.dumps(document, sort_keys=True).encode()

        def add_headers(request: Any, **_: Any) -> None:
            for name, value in headers.items():  # botocore's HTTPHeaders has no update()
                request.headers[name] = value

        def put() -> str:
            if headers:
                self.client.meta.events.register("before-sign.s3.PutObject", add_headers)
            try:
                answer = self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
                )
            finally:
                self.client.meta.events.unregister("before-sign.s3.PutObject", add_headers)
            return str(answer["ETag"])

        try:
            return self.retry.call("PutObject", put, _is_transient)
        except ClientError as error:
            if _is_conflict(error):
                raise StateConflict(f"s3://{self.bucket}/{self.key} changed since it was read") from error
            raise CloudError("PutObject", error.response["Error"].get("Code", "?"), str(error)) from error
