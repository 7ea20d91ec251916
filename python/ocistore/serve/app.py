"""The read-only OCI distribution endpoint (aiohttp): pulls only, everything else refused.

``GET``/``HEAD`` of ``/v2/``, ``/v2/<name>/manifests/<tag|digest>`` and
``/v2/<name>/blobs/<digest>`` (with ``Range``), plus ``/metrics``. Uploads, deletes, the
catalogue and tag lists get 405 or 404. Blobs go out with ``sendfile(2)`` from a descriptor
opened while a GC lease holds the blob, so memory does not grow with blob size or the number of
slow readers. aiohttp answers a single byte range with 206 and anything it cannot satisfy
(past the end, several ranges at once) with 416, as containerd's clients only ask for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger, AbstractStreamWriter

from ocistore.errors import BlobNotFoundError, ImageNotFoundError
from ocistore.serve.content import ServedContent
from ocistore.serve.names import parse_mirror_path, repository_name

__all__ = ["AccessLog", "Metrics", "make_app"]

_API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
_CONTENT = web.AppKey("content", ServedContent)
_METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
_KIND = "ocistore.kind"


@dataclass
class Metrics:
    """Counters for ``/metrics``: bytes served, and requests by kind and outcome."""

    bytes_served: int = 0
    requests: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, kind: str, status: int, sent: int) -> None:
        """Adds one finished request."""
        outcome = "hit" if status < 300 else "miss" if status == 404 else "refused"
        self.requests[kind, outcome] = self.requests.get((kind, outcome), 0) + 1
        if outcome == "hit":
            self.bytes_served += sent

    def render(self) -> str:
        """The Prometheus text exposition of the counters."""
        lines = [
            "# HELP ocistore_serve_bytes_total Bytes of manifests and blobs sent.",
            "# TYPE ocistore_serve_bytes_total counter",
            f"ocistore_serve_bytes_total {self.bytes_served}",
            "# HELP ocistore_serve_requests_total Requests by kind and outcome.",
            "# TYPE ocistore_serve_requests_total counter",
        ]
        for (kind, outcome), value in sorted(self.requests.items()):
            lines.append(
                f'ocistore_serve_requests_total{{kind="{kind}",outcome="{outcome}"}} {value}'
            )
        return "\n".join(lines) + "\n"


class AccessLog(AbstractAccessLogger):
    """One line per request (method, path, status, bytes, seconds); feeds the metrics."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        # Body bytes (aiohttp's body_length counts headers, and misses sendfile()).
        sent = 0 if request.method == "HEAD" else response.content_length or 0
        if isinstance(request, web.Request):
            request.app[_METRICS].count(request.get(_KIND, "other"), response.status, sent)
        self.logger.info(
            "%s %s %s %d %d %.6f",
            request.remote,
            request.method,
            request.path_qs,
            response.status,
            sent,
            time,
        )


class _SentFile(web.FileResponse):
    """A file response the handler sends itself (to hold the blob's lease until the end)."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:  # aiohttp prepares the returned response again: nothing left to do
            return None
        return await super().prepare(request)


def _error(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"errors": [{"code": code, "message": message}]})
    return web.json_response(text=body, status=status, headers=_API_VERSION)


async def _version_check(request: web.Request) -> web.Response:
    return web.json_response({}, headers=_API_VERSION)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[_METRICS].render(), content_type="text/plain", charset="utf-8"
    )


async def _refuse(request: web.Request) -> web.Response:
    if parse_mirror_path(request.path) is None and not request.path.startswith("/v2/"):
        return _error(404, "NOT_FOUND", "not found")
    return _error(405, "UNSUPPORTED", "this mirror is read-only: only GET and HEAD of content")


async def _pull(request: web.Request) -> web.StreamResponse:
    wanted = parse_mirror_path(request.path)
    if wanted is None:
        return _error(404, "NOT_FOUND", "only manifests and blobs are served")
    request[_KIND] = wanted.kind.removesuffix("s")
    content = request.app[_CONTENT]
    try:
        repository = repository_name(
            wanted.name, request.query.get("ns"), content.policy.default_registry
        )
    except ValueError as error:
        return _error(400, "NAME_INVALID", str(error))
    try:
        if wanted.kind == "manifests":
            return await _manifest(request, content, repository, wanted.reference)
        return await _blob(request, content, repository, wanted.reference)
    except ValueError as error:
        code = "DIGEST_INVALID" if wanted.kind == "blobs" else "MANIFEST_INVALID"
        return _error(400, code, str(error))
    except ImageNotFoundError as error:
        return _error(404, "MANIFEST_UNKNOWN", str(error).strip("'\""))
    except BlobNotFoundError as error:
        return _error(404, "BLOB_UNKNOWN", str(error).strip("'\""))


async def _manifest(
    request: web.Request, content: ServedContent, repository: str, reference: str
) -> web.Response:
    answer = await asyncio.to_thread(content.manifest, repository, reference)
    return web.Response(
        body=answer.data,
        headers={
            **_API_VERSION,
            "Content-Type": answer.media_type,
            "Docker-Content-Digest": answer.digest,
            "ETag": f'"{answer.digest}"',
        },
    )


async def _blob(
    request: web.Request, content: ServedContent, repository: str, digest: str
) -> web.StreamResponse:
    held = contextlib.ExitStack()
    answer = await asyncio.to_thread(held.enter_context, content.blob(repository, digest))
    try:
        # The descriptor's /proc path reopens exactly the leased inode (never a sibling such
        # as a precompressed "<blob>.gz", which aiohttp would otherwise look for).
        response = _SentFile(
            f"/proc/self/fd/{answer.fd}",
            headers={
                **_API_VERSION,
                "Content-Type": "application/octet-stream",
                "Docker-Content-Digest": answer.digest,
                "Accept-Ranges": "bytes",
            },
        )
        await response.prepare(request)  # sends the whole (ranged) body before the lease ends
        return response
    finally:
        await asyncio.to_thread(held.close)


def make_app(content: ServedContent) -> web.Application:
    """The aiohttp application serving ``content`` read-only."""
    app = web.Application()
    app[_CONTENT] = content
    app[_METRICS] = Metrics()
    app.router.add_get("/v2/", _version_check)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/v2/{path:.+}", _pull)
    app.router.add_route("*", "/{path:.*}", _refuse)
    return app
