"""Raw test content for protocol-level tests: random blobs and a minimal manifest over them.

(Real images come from ``ocistore.testing.imagebuild``; these only exercise the wire protocol.)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass

from ocistore.registry.client import RegistryClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class RawImage:
    """A manifest, its config and its (opaque) layers as pushed."""

    manifest: bytes
    digest: str
    config: bytes
    layers: list[bytes]


def raw_image(layer_sizes: list[int]) -> RawImage:
    """Random layers, a config and an OCI manifest referencing them."""
    layers = [os.urandom(n) for n in layer_sizes]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(x),
                    "size": len(x),
                }
                for x in layers
            ],
        }
    ).encode()
    return RawImage(manifest, sha256(manifest), config, layers)


def push_raw(client: RegistryClient, repository: str, tag: str, image: RawImage) -> None:
    """Upload every blob (monolithic) and PUT the manifest under ``tag``."""
    for blob in [image.config, *image.layers]:
        if client.blob_exists(repository, sha256(blob)) is None:
            client.upload_blob(repository, sha256(blob), io.BytesIO(blob), len(blob))
    client.put_manifest(repository, tag, image.manifest, OCI_MANIFEST)
