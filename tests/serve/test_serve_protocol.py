"""The mirror speaks the distribution API's pull side, and refuses everything else."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from servefixtures import (
    BuiltImage,
    BuiltIndex,
    Served,
    build_image,
    publish,
    running_server,
    unique_files,
)

import ocistore


def _get(served: Served, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(
        str(kwargs.pop("method", "GET")), served.server.url + path, timeout=30, **kwargs
    )  # type: ignore[arg-type]


def _single(served: Served, variant: str = "single-oci") -> tuple[str, BuiltImage]:
    path, image = served.images[variant]
    assert isinstance(image, BuiltImage)
    return path, image


def test_version_check(served: Served) -> None:
    response = _get(served, "/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


@pytest.mark.parametrize("variant", ["single-oci", "single-docker", "multi-oci", "multi-docker"])
def test_manifest_by_tag_and_digest_has_the_registrys_bytes_and_headers(
    served: Served, variant: str
) -> None:
    path, image = served.images[variant]
    ns = {"ns": served.upstream}
    expected = image.index if isinstance(image, BuiltIndex) else image.manifest
    media_type = image.media_type if isinstance(image, BuiltIndex) else image.manifest_media_type
    for reference in ("v1", image.digest):
        got = _get(served, f"/v2/{path}/manifests/{reference}", params=ns)
        assert got.status_code == 200, got.text
        assert got.content == expected
        assert got.headers["content-type"] == media_type
        assert got.headers["docker-content-digest"] == image.digest
        assert int(got.headers["content-length"]) == len(expected)
        head = _get(served, f"/v2/{path}/manifests/{reference}", params=ns, method="HEAD")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["docker-content-digest"] == image.digest
        assert int(head.headers["content-length"]) == len(expected)
        assert head.headers["content-type"] == media_type


def test_blob_get_head_and_ranges(served: Served) -> None:
    path, image = _single(served)
    layer = image.layers[0]
    url = f"/v2/{path}/blobs/{layer.digest}"
    ns = {"ns": served.upstream}
    full = _get(served, url, params=ns)
    assert full.status_code == 200 and full.content == layer.data
    assert full.headers["docker-content-digest"] == layer.digest
    assert full.headers["content-type"] == "application/octet-stream"
    head = _get(served, url, params=ns, method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(layer.data)
    size = len(layer.data)
    part = _get(served, url, params=ns, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == layer.data[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{size}"
    tail = _get(served, url, params=ns, headers={"Range": "bytes=100-"})
    assert tail.status_code == 206 and tail.content == layer.data[100:]
    suffix = _get(served, url, params=ns, headers={"Range": "bytes=-5"})
    assert suffix.status_code == 206 and suffix.content == layer.data[-5:]
    beyond = _get(served, url, params=ns, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    config = _get(served, f"/v2/{path}/blobs/{image.config_digest}", params=ns)
    assert config.content == image.config


def test_ns_keeps_registries_apart_and_defaults_to_docker_hub(
    served: Served, tmp_path: Path
) -> None:
    path, image = _single(served)
    manifest = f"/v2/{path}/manifests/v1"
    assert _get(served, manifest, params={"ns": served.upstream}).status_code == 200
    # The same path under another registry (or Docker Hub, the default) is another image.
    assert _get(served, manifest, params={"ns": "registry.example.com"}).status_code == 404
    assert _get(served, manifest).status_code == 404
    assert _get(served, manifest, params={"ns": "docker.io"}).status_code == 404
    blob = f"/v2/{path}/blobs/{image.layers[0].digest}"
    assert _get(served, blob, params={"ns": "registry.example.com"}).status_code == 404
    # Another default registry makes ns optional (Docker's registry-mirrors send none).
    with running_server(served.store.root, "--default-registry", served.upstream) as other:
        response = httpx.get(f"{other.url}{manifest}", timeout=30)
        assert response.status_code == 200 and response.content == image.manifest


def test_unknown_content_is_404_with_oci_error_codes(served: Served) -> None:
    path, _ = _single(served)
    ns = {"ns": served.upstream}
    missing = "sha256:" + hashlib.sha256(b"nothing").hexdigest()
    tag = _get(served, f"/v2/{path}/manifests/nope", params=ns)
    assert tag.status_code == 404
    assert json.loads(tag.content)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    blob = _get(served, f"/v2/{path}/blobs/{missing}", params=ns)
    assert blob.status_code == 404
    assert json.loads(blob.content)["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert _get(served, "/v2/other/repo/manifests/v1", params=ns).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v2/{path}/blobs/uploads/", 405),
        ("PUT", "/v2/{path}/manifests/v2", 405),
        ("DELETE", "/v2/{path}/manifests/v1", 405),
        ("DELETE", "/v2/{path}/blobs/{layer}", 405),
        ("PATCH", "/v2/{path}/blobs/uploads/x", 405),
        ("GET", "/v2/_catalog", 404),
        ("GET", "/v2/{path}/tags/list", 404),
        ("GET", "/", 404),
        ("POST", "/metrics", 404),
    ],
)
def test_everything_but_pulls_is_refused(
    served: Served, method: str, path: str, status: int
) -> None:
    repo, image = _single(served)
    url = path.format(path=repo, layer=image.layers[0].digest)
    response = _get(served, url, method=method, params={"ns": served.upstream}, content=b"x")
    assert response.status_code == status
    # Nothing changed: the content is still served as before.
    assert _get(served, f"/v2/{repo}/manifests/v1", params={"ns": served.upstream}).content == (
        image.manifest
    )


def test_access_log_and_metrics_count_bytes_hits_and_misses(served: Served) -> None:
    path, image = _single(served)
    layer = image.layers[1]
    before = httpx.get(served.server.url + "/metrics", timeout=30).text
    assert _get(served, f"/v2/{path}/blobs/{layer.digest}", params={"ns": served.upstream}).content
    assert _get(served, f"/v2/{path}/manifests/zzz", params={"ns": served.upstream}).is_error
    after = httpx.get(served.server.url + "/metrics", timeout=30).text

    def value(text: str, name: str) -> int:
        for line in text.splitlines():
            if line.startswith(name + " "):
                return int(line.split()[-1])
        return 0

    assert value(after, "ocistore_serve_bytes_total") - value(
        before, "ocistore_serve_bytes_total"
    ) >= len(layer.data)
    hit = 'ocistore_serve_requests_total{kind="blob",outcome="hit"}'
    miss = 'ocistore_serve_requests_total{kind="manifest",outcome="miss"}'
    assert value(after, hit) == value(before, hit) + 1
    assert value(after, miss) == value(before, miss) + 1
    lines = [line for line in served.server.access_log() if layer.digest in line]
    assert lines, "one access log line per request"
    fields = lines[-1].split()
    # ... METHOD PATH STATUS BYTES SECONDS
    assert fields[-5] == "GET" and fields[-3] == "200" and int(fields[-2]) >= len(layer.data)
    assert float(fields[-1]) >= 0


def test_an_image_pulled_after_the_server_started_is_served(served: Served, tmp_path: Path) -> None:
    # The server reads the store on every request: an image pulled after it started is served.
    image = build_image([unique_files("late")])
    ref = f"{served.upstream}/proto/late:v1"
    publish(image, ref, tmp_path)
    response = _get(served, "/v2/proto/late/manifests/v1", params={"ns": served.upstream})
    assert response.status_code == 404
    ocistore.pull(ref, store=served.store)
    response = _get(served, "/v2/proto/late/manifests/v1", params={"ns": served.upstream})
    assert response.status_code == 200 and response.content == image.manifest


def test_many_concurrent_range_requests_each_get_their_bytes(served: Served) -> None:
    path, image = _single(served)
    layer = image.layers[0]
    size = len(layer.data)
    url = f"{served.server.url}/v2/{path}/blobs/{layer.digest}"
    ranges = [(start, min(size - 1, start + 97)) for start in range(0, size, 61)][:96]

    def fetch(bounds: tuple[int, int]) -> tuple[tuple[int, int], int, bytes]:
        start, end = bounds
        response = httpx.get(
            url,
            params={"ns": served.upstream},
            headers={"Range": f"bytes={start}-{end}"},
            timeout=60,
        )
        return bounds, response.status_code, response.content

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(fetch, ranges))
    assert len(results) == len(ranges) > 50
    for (start, end), status, body in results:
        assert status == 206 and body == layer.data[start : end + 1]


def test_missing_or_corrupt_content_is_never_served(served: Served, tmp_path: Path) -> None:
    image = build_image([unique_files("corrupt")])
    ref = f"{served.upstream}/proto/corrupt:v1"
    publish(image, ref, tmp_path)
    ocistore.pull(ref, store=served.store)
    ns = {"ns": served.upstream}
    manifest = served.store.blob_path(image.digest)
    manifest.chmod(0o644)
    manifest.write_bytes(image.manifest.replace(b"schemaVersion", b"schemaVersioN"))
    assert _get(served, "/v2/proto/corrupt/manifests/v1", params=ns).status_code == 404
    served.store.blob_path(image.layers[0].digest).unlink()
    assert (
        _get(served, f"/v2/proto/corrupt/blobs/{image.layers[0].digest}", params=ns).status_code
        == 404
    )
    assert (
        _get(served, f"/v2/proto/corrupt/blobs/{image.config_digest}", params=ns).content
        == image.config
    )
