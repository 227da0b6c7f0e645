"""A local stand-in for the Hugging Face Hub's read endpoints, enough for ``huggingface_hub`` downloads.

Serves one repository at one commit: ``GET /api/models/{repo}[/revision/{rev}]`` (the model info with
its file list), ``GET /api/models/{repo}/tree/{rev}`` (the file tree) and
``HEAD``/``GET /{repo}/resolve/{rev}/{file}`` (commit and etag headers, the bytes).
LFS-like files (``*.safetensors``, ``*.bin``) get their sha256 as etag, as on the hub. Every file
served with GET is recorded in ``downloads``.
"""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote

from tests.loopback_server import LoopbackServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubStandIn:
    """Serves the files of ``repo_dir`` as repository ``repo_id`` at :data:`COMMIT` (branch ``main``)."""

    def __init__(self, repo_id: str, repo_dir: Path) -> None:
        self.repo_id = repo_id
        self.files = {p.name: p.read_bytes() for p in sorted(repo_dir.iterdir()) if p.is_file()}
        self.downloads: list[str] = []
        self.revisions_asked: list[str] = []
        self._server = LoopbackServer(self._serve, ("GET", "HEAD"))

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> HubStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _etag(self, name: str) -> str:
        data = self.files[name]
        if name.endswith((".safetensors", ".bin")):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def _tree_entry(self, name: str) -> dict[str, object]:
        data = self.files[name]
        entry: dict[str, object] = {"type": "file", "path": name, "size": len(data)}
        entry["oid"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        if name.endswith((".safetensors", ".bin")):
            entry["lfs"] = {"oid": self._etag(name), "size": len(data), "pointerSize": 134}
        return entry

    def _known_revision(self, revision: str) -> bool:
        self.revisions_asked.append(revision)
        return revision in ("main", COMMIT)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with_body = handler.command != "HEAD"
        path = unquote(handler.path.split("?")[0])
        api_prefix, resolve_prefix = f"/api/models/{self.repo_id}", f"/{self.repo_id}/resolve/"
        if path in (api_prefix, f"{api_prefix}/revision/main") or path.startswith(f"{api_prefix}/revision/"):
            revision = path.removeprefix(f"{api_prefix}/revision/") if "/revision/" in path else "main"
            if not self._known_revision(revision):
                return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            siblings = [{"rfilename": name, "size": len(data)} for name, data in self.files.items()]
            body = json.dumps(
                {"id": self.repo_id, "modelId": self.repo_id, "sha": COMMIT, "siblings": siblings}
            )
            return self._reply(handler, 200, body.encode(), {"Content-Type": "application/json"}, with_body)
        if path.startswith(f"{api_prefix}/tree/"):
            revision = path.removeprefix(f"{api_prefix}/tree/").split("/")[0]
            if not self._known_revision(revision):
                return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            body = json.dumps([self._tree_entry(name) for name in self.files])
            return self._reply(handler, 200, body.encode(), {"Content-Type": "application/json"}, with_body)
        if path.startswith(resolve_prefix):
            revision, _, name = path.removeprefix(resolve_prefix).partition("/")
            if not self._known_revision(revision):
                return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            if name not in self.files:
                return self._error(handler, 404, "EntryNotFound", f"{name} does not exist")
            if with_body:
                self.downloads.append(name)
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{self._etag(name)}"'}
            if name.endswith((".safetensors", ".bin")):
                headers["X-Linked-Etag"] = headers["ETag"]
                headers["X-Linked-Size"] = str(len(self.files[name]))
            return self._reply(handler, 200, self.files[name], headers, with_body)
        return self._error(handler, 404, "RepoNotFound", f"no route {path}")

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], with_body: bool
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if with_body:
            handler.wfile.write(body)

    @classmethod
    def _error(cls, handler: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        cls._reply(handler, status, body, {"X-Error-Code": code, "X-Error-Message": message}, True)
