"""The image makers of the corpus: buildah, skopeo, umoci, GNU tar and bsdtar, run privately.

Every tool runs with its own storage in a temporary directory: buildah gets ``--root``,
``--runroot`` and the ``vfs`` driver, its own ``storage.conf`` and a private
``XDG_RUNTIME_DIR``. containers/image keeps a blob-info cache in ``/var/lib/containers/cache``
when run as root, which would both touch the machine and make a later push reuse a blob of
another compression; so skopeo and buildah run in a private mount namespace where that
directory is a fresh tmpfs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONTAINERS_STATE = "/var/lib/containers"
_PRIVATE_CACHE = (
    f'mkdir -p {CONTAINERS_STATE} && mount -t tmpfs tmpfs {CONTAINERS_STATE} && exec "$@"'
)


def run(argv: Sequence[str | Path], *, env: dict[str, str] | None = None) -> str:
    """Runs a tool; raises with its stderr when it fails."""
    args = [str(a) for a in argv]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def require(*tools: str) -> None:
    """Fails (never skips) when a tool that scripts/setup installs is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    assert not missing, f"not installed (scripts/setup installs them): {missing}"


class Containers:
    """buildah and skopeo with private storage, talking plain HTTP to one test registry."""

    def __init__(self, work: Path, registry: str) -> None:
        self.registry = registry
        self.work = work
        # podman refuses a runroot path over 50 characters: a short one in /tmp (see close()).
        self.runroot = Path(tempfile.mkdtemp(prefix="ocs-run-"))
        runtime = work / "xdg-runtime"
        runtime.mkdir(parents=True, exist_ok=True)
        storage_conf = work / "storage.conf"
        storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{self.runroot}"\ngraphroot = "{work}/root"\n'
        )
        registries_conf = work / "registries.conf"
        registries_conf.write_text(f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n')
        self.env = {
            **os.environ,
            "BUILDAH_ISOLATION": "chroot",
            "STORAGE_DRIVER": "vfs",
            "XDG_RUNTIME_DIR": str(runtime),
            "CONTAINERS_STORAGE_CONF": str(storage_conf),
            "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
        }
        self._storage = [
            f"--root={work}/root",
            f"--runroot={self.runroot}",
            "--storage-driver=vfs",
        ]

    def close(self) -> None:
        """Removes the runroot (the storage itself is in ``work``)."""
        shutil.rmtree(self.runroot, ignore_errors=True)

    def _private(self, argv: Sequence[str | Path]) -> str:
        wrapped = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _PRIVATE_CACHE]
        return run([*wrapped, "sh", *argv], env=self.env)

    def buildah(self, *args: str | Path) -> str:
        """``buildah`` with this instance's storage (output stripped)."""
        return self._private(["buildah", *self._storage, *args]).strip()

    def podman(self, *args: str | Path) -> str:
        """``podman`` on the same storage as buildah (no runtime is needed for load/save)."""
        extra = [
            "--events-backend=none",
            f"--tmpdir={self.work}/libpod",
            "--cgroup-manager=cgroupfs",
        ]
        return self._private(["podman", *self._storage, *extra, *args])

    def skopeo(self, *args: str | Path) -> str:
        """``skopeo`` with an insecure policy (the images are the test's own)."""
        return self._private(["skopeo", "--insecure-policy", *args])

    def scratch_image(
        self, rootfs: Path, name: str, *, image_format: str, arch: str = "amd64"
    ) -> str:
        """``buildah from scratch`` + ``copy`` + ``config`` + ``commit``; returns the image id."""
        container = self.buildah("from", "--arch", arch, "scratch")
        try:
            self.buildah("copy", container, f"{rootfs}/", "/")
            self.buildah(
                "config",
                "--os",
                "linux",
                "--arch",
                arch,
                "--entrypoint",
                '["/bin/tool"]',
                "--env",
                "CORPUS=1",
                "--label",
                f"made.by=buildah-{image_format}",
                container,
            )
            return self.buildah("commit", "-q", "--format", image_format, container, name)
        finally:
            self.buildah("rm", container)

    def push(self, image: str, repository: str, *, compression: str) -> str:
        """``buildah push`` with a compression format; returns the registry reference."""
        ref = f"{self.registry}/{repository}"
        self.buildah(
            "push", "-q", "--tls-verify=false", "--compression-format", compression, image,
            f"docker://{ref}",
        )  # fmt: skip
        return ref

    def push_manifest_list(self, images: list[str], repository: str, *, list_format: str) -> str:
        """``buildah manifest create/add/push --all`` (a Docker manifest list or an OCI index)."""
        name = f"list-{repository.replace('/', '-').replace(':', '-')}"
        self.buildah("manifest", "create", name)
        for image in images:
            self.buildah("manifest", "add", name, f"containers-storage:{image}")
        ref = f"{self.registry}/{repository}"
        self.buildah(
            "manifest", "push", "-q", "--all", "--tls-verify=false", "--format", list_format,
            name, f"docker://{ref}",
        )  # fmt: skip
        return ref


def umoci(*args: str | Path) -> str:
    """``umoci`` (it keeps no state outside the layout it is given)."""
    return run(["umoci", *args])


def gnu_tar_layer(source: Path, members: list[str], out: Path) -> Path:
    """A POSIX (pax) layer from GNU tar: xattrs, numeric owners, nanosecond mtimes."""
    run(
        [
            "tar", "--format=posix", "--xattrs", "--xattrs-include=*", "--numeric-owner",
            "--pax-option=delete=atime,delete=ctime", "--no-recursion", "-C", source,
            "-cf", out, *(members or ["--files-from=/dev/null"]),
        ]
    )  # fmt: skip
    return out


def bsdtar_layer(source: Path, members: list[str], out: Path) -> Path:
    """A pax layer from libarchive's bsdtar."""
    run(["bsdtar", "--format=pax", "--numeric-owner", "-C", source, "-cf", out, *members])
    return out


def ocistore_cli(*args: str | Path) -> Any:
    """Runs ``python -m ocistore --json ARGS``; returns its JSON document."""
    argv = [sys.executable, "-m", "ocistore", "--json", *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return json.loads(done.stdout)
