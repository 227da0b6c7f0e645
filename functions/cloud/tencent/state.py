"""The scaler's state on COS, through its S3 API: :class:`functions.cloud.state.S3StateStore` with COS's
writes.

COS has no conditional PUT: its PUT Object lists no ``If-Match`` / ``If-None-Match``
request headers, and "如果试图添加已存在的同名对象，则新上传的对象将覆盖原来的对象" (COS API, PUT Object).
Sending ``If-Match`` there would only look safe. So on COS the first write carries
``x-cos-forbid-overwrite: true`` (COS's own create-only header: an existing object answers 409, a
:class:`functions.cloud.state.StateConflict`), and later writes are plain PUTs. They need no condition because SCF runs the
scaler single-flight: the stack gives the scaler function a reserved concurrency equal to its memory
(the Tencent component of ``infra/``), and
"The reserved quota is the upper limit of the function concurrency quota"
(SCF, Reserved Concurrency, doc 583/39464; one event-function instance serves one invocation), so two
ticks never overlap; a re-delivered timer event is still recognised by the tick it names.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.cloud.state import S3StateStore


@dataclass
class CosStateStore(S3StateStore):
    """``cos://bucket/key`` through ``client`` (a boto3 S3 client whose endpoint_url is
    ``https://cos.<region>.myqcloud.com``, with the SecretId / SecretKey as access keys)."""

    def write_condition(self, etag: str | None) -> dict[str, str]:
        """None: COS's PUT Object takes no ``If-Match`` / ``If-None-Match`` (see the module)."""
        return {}

    def write_headers(self, etag: str | None) -> dict[str, str]:
        """The first write (``etag`` None) is create-only: ``x-cos-forbid-overwrite: true``."""
        return {"x-cos-forbid-overwrite": "true"} if etag is None else {}
