"""The jobs timed side by side: ocistore, its peers, and the machine's limits, by group."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ocistore._core import default_unpack_writers
from peerbench.measure import Job
from peerbench.runtimes import Runtimes

CLIENTS = str(Path(__file__).with_name("clients.py"))
PY = sys.executable
#: The standard library a command-line re-pull of a present image loads (besides what Python
#: loads at start-up): the floor of that row (tests/bench/test_repull_floor.py). No third-party
#: library is loaded: the line is parsed without click (``ocistore/cli/quick.py``), the HEAD
#: sent without httpx (``registry/lighthttp.py``).
REPULL_STDLIB = (
    "re", "typing", "enum", "pathlib", "json", "sqlite3", "socket", "threading",
    "datetime", "urllib.parse", "base64", "contextlib", "fcntl", "functools", "collections",
)  # fmt: skip
#: What a cold pull (+unpack) from a plain-HTTP registry loads besides: its GETs go without
#: httpx too, so its floor is also Python with the standard library.
PULL_STDLIB = (
    *REPULL_STDLIB, "select", "concurrent.futures", "queue", "shutil", "tempfile", "random",
    "zlib", "bz2", "lzma",
)  # fmt: skip


def stdlib_floor_name(what: str) -> str:
    """The name of :func:`stdlib_floor`'s row for ``what`` ("a pull", "a re-pull")."""
    return f"python + the stdlib {what} imports"


#: ocistore's pull + unpack row, and its start-up floor beside it (the report's floor table).
OURS_PULL_UNPACK = "ocistore pull --unpack"
PULL_STARTUP = stdlib_floor_name("a pull")


def stdlib_floor(group: str, what: str, modules: tuple[str, ...]) -> Job:
    """The "limit" row of ``group``: Python importing the standard library ``modules`` that
    ocistore's row there loads (``what``), before any ocistore code."""
    return Job(
        group,
        stdlib_floor_name(what),
        "limit",
        [PY, "-c", f"import {', '.join(modules)}"],
        note="the floor of the ocistore row: Python and the standard library modules it "
        "loads (no third-party imports), before any ocistore code",
    )


@dataclass(frozen=True)
class Setup:
    """Everything the jobs read: references, warm copies of the image, scratch space."""

    host: str
    refs: dict[str, str]  # compression -> host/repo:tag
    tags: dict[str, str]  # compression -> tag
    blobs: dict[str, list[Path]]  # compression -> layer blob files, base first
    warm_store: Path  # an ocistore store holding both variants (pulled once)
    warm_layouts: dict[str, Path]  # compression -> skopeo's OCI layout (pulled once)
    warm_tree: Path  # an unpacked root filesystem (for cp -a)
    scratch: Path
    policy: Path  # skopeo's signature policy (accept anything: local test registry)
    runtimes: Runtimes  # the node's runtimes: private containerd, podman storage


def other_writer_threads(job: Job) -> Job:
    """ocistore's ``job`` with the other setting of the file-writing worker threads, timed
    beside it: two of them where the engine's default here is none, else none. What they gain
    or cost here."""
    writers = 0 if default_unpack_writers() else 2
    label = "no writer threads" if writers == 0 else "two writer threads"
    return replace(
        job,
        name=f"{job.name}, {label}",
        tool=f"ocistore (OCISTORE_UNPACK_WRITERS={writers})",
        argv=["env", f"OCISTORE_UNPACK_WRITERS={writers}", *job.argv],
    )


def _fresh(*paths: Path) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)


def _fresh_dirs(*paths: Path) -> None:
    _fresh(*paths)
    for path in paths:
        path.mkdir()


def skopeo_copy(policy: Path, ref: str, layout: Path, tag: str) -> list[str]:
    """``skopeo copy`` of ``ref`` from the plain-HTTP registry into an OCI layout."""
    source, target = f"docker://{ref}", f"oci:{layout}:{tag}"
    return [
        "skopeo",
        "--policy",
        str(policy),
        "copy",
        "-q",
        "--src-tls-verify=false",
        source,
        target,
    ]


def _tarfile_script() -> str:
    # The tarfile peer of benches/unpack_compare.py (its owner keeps it current).
    from unpack_compare import TARFILE_SCRIPT

    return TARFILE_SCRIPT


def pull_jobs(setup: Setup, compression: str) -> list[Job]:
    """Registry -> empty store (blobs only, digest-verified where the tool verifies)."""
    ref = setup.refs[compression]
    group = f"pull ({compression})"
    s = setup.scratch
    layer_urls = [
        f"http://{ref.split('/', 1)[0]}/v2/{ref.split('/', 1)[1].rsplit(':', 1)[0]}/blobs/"
        f"sha256:{blob.name}"
        for blob in setup.blobs[compression]
    ]
    return [
        *_blob_pull_jobs(setup, group, compression),
        Job(
            group,
            "python-dxf pull_blob",
            "python-dxf",
            [PY, CLIENTS, "dxf-pull", ref, str(s / "dxf")],
            prepare=lambda: _fresh(s / "dxf"),
            count_requests=True,
            note="blob download only",
        ),
        Job(
            group,
            "oras-py download_blob",
            "oras-py",
            [PY, CLIENTS, "oras-pull", ref, str(s / "oras")],
            prepare=lambda: _fresh(s / "oras"),
            count_requests=True,
            note="blob download only, no digest check",
        ),
        Job(
            group,
            "curl GET layers > /dev/null",
            "limit",
            ["curl", "-sf", *[arg for url in layer_urls for arg in ("-o", "/dev/null", url)]],
            needs=("curl",),
            note="HTTP transfer ceiling",
        ),
    ]


def unpack_jobs(setup: Setup, compression: str) -> list[Job]:
    """Stored layers -> root filesystem, all layers in order."""
    tag = setup.tags[compression]
    group = f"unpack ({compression})"
    s = setup.scratch
    blobs = [str(b) for b in setup.blobs[compression]]
    flag = "-xzf" if compression == "gzip" else "--zstd -xf"
    tar_all = " && ".join(f"tar -C {s / 'tar'} {flag} {b}" for b in blobs)
    decompress = "gzip -dc" if compression == "gzip" else "zstd -qdc"
    jobs = [
        Job(
            group,
            "ocistore unpack",
            "ocistore",
            [
                PY,
                CLIENTS,
                "ocistore-unpack",
                str(setup.warm_store),
                setup.refs[compression],
                str(s / "rootfs"),
            ],
            prepare=lambda: _fresh(s / "rootfs"),
        ),
        Job(
            group,
            "umoci unpack",
            "umoci",
            [
                "umoci",
                "unpack",
                "--image",
                f"{setup.warm_layouts[compression]}:{tag}",
                str(s / "bundle"),
            ],
            prepare=lambda: _fresh(s / "bundle"),
            needs=("umoci",),
        ),
        Job(
            group,
            "GNU tar (per layer)",
            "GNU tar",
            ["sh", "-c", tar_all],
            prepare=lambda: _fresh_dirs(s / "tar"),
            needs=("tar",),
            note="no whiteout handling",
        ),
        Job(
            group,
            "Python tarfile",
            "tarfile",
            [PY, "-c", _tarfile_script(), str(s / "tarfile"), compression, *blobs],
            prepare=lambda: _fresh_dirs(s / "tarfile"),
            note="no whiteout handling",
        ),
        Job(
            group,
            f"{decompress} > /dev/null",
            "limit",
            ["sh", "-c", f"{decompress} {' '.join(blobs)} > /dev/null"],
            needs=(decompress.split()[0],),
            note="one core, decompression only",
        ),
    ]
    if compression == "gzip":
        jobs.append(
            Job(
                group,
                "cp -a of the unpacked tree",
                "limit",
                ["cp", "-a", str(setup.warm_tree), str(s / "copy")],
                prepare=lambda: _fresh(s / "copy"),
                note="file system write ceiling",
            )
        )
    return [jobs[0], other_writer_threads(jobs[0]), *jobs[1:]]


def pull_unpack_jobs(setup: Setup, compression: str) -> list[Job]:
    """Registry -> root filesystem in one job."""
    ref, tag = setup.refs[compression], setup.tags[compression]
    group = f"pull+unpack ({compression})"
    s = setup.scratch
    skopeo = " ".join(skopeo_copy(setup.policy, ref, s / "layout", tag))
    ours = Job(
        group,
        OURS_PULL_UNPACK,
        "ocistore",
        [PY, CLIENTS, "ocistore-pull", str(s / "store"), ref, str(s / "rootfs")],
        prepare=lambda: _fresh(s / "store", s / "rootfs"),
    )
    return [
        ours,
        other_writer_threads(ours),
        Job(
            group,
            "skopeo copy + umoci unpack",
            "skopeo+umoci",
            ["sh", "-c", f"{skopeo} && umoci unpack --image {s / 'layout'}:{tag} {s / 'bundle'}"],
            prepare=lambda: _fresh(s / "layout", s / "bundle"),
            needs=("skopeo", "umoci"),
        ),
        *runtime_pull_jobs(setup.runtimes, group, ref),
        stdlib_floor(group, "a pull", PULL_STDLIB),
    ]


def _on_containerd(runtimes: Runtimes) -> dict[str, Any]:
    """A ``ctr`` job's fields: what it needs, and that the daemon does (and spends) its work."""
    # A containerd that could not start shows as "not installed: containerd (not running)".
    return {
        "needs": ("ctr",) if runtimes.containerd_socket else ("containerd (not running)",),
        "cpu_elsewhere": "containerd",
        "daemon_cpu": runtimes.containerd_cpu,
    }


def runtime_pull_jobs(runtimes: Runtimes, group: str, ref: str) -> list[Job]:
    """containerd's and podman's cold pull + unpack of ``ref`` (emptied before every run)."""
    return [
        Job(
            group,
            "containerd 1.6 ctr pull",
            "containerd",
            runtimes.ctr_pull(ref),
            prepare=runtimes.ctr_empty,
            count_requests=True,
            note=f"{runtimes.containerd_snapshotter} snapshotter",
            **_on_containerd(runtimes),
        ),
        Job(
            group,
            "podman 4.3 pull (overlay)",
            "podman",
            runtimes.podman_pull(ref),
            prepare=runtimes.podman_empty,
            needs=("podman",),
            count_requests=True,
        ),
    ]


def manifest_head(ref: str) -> list[str]:
    """``curl -I`` of a manifest: one request, the least a re-pull must do."""
    host, rest = ref.split("/", 1)
    repository, tag = rest.rsplit(":", 1)
    accept = "Accept: application/vnd.oci.image.manifest.v1+json"
    url = f"http://{host}/v2/{repository}/manifests/{tag}"
    return ["curl", "-sfI", "-o", "/dev/null", "-H", accept, url]


def _ensure_present(argv: list[str]) -> Callable[[], None]:
    """A prepare step that pulls (untimed) so that the timed run finds the image present."""

    def prepare() -> None:
        subprocess.run(argv, capture_output=True, check=False)

    return prepare


def repull_jobs(setup: Setup) -> list[Job]:
    """The image is already there; pull policy Always asks the registry again.

    Two groups: ocistore's library in a fresh process (beside Python's own start-up and skopeo),
    and the command line beside the node runtimes' command lines and one ``curl -I``.
    """
    ref, tag = setup.refs["gzip"], setup.tags["gzip"]
    library = "re-pull, policy Always (gzip)"
    cli = "re-pull on the command line (gzip)"
    runtimes = setup.runtimes
    ocistore_cli = [str(Path(PY).with_name("ocistore")), "--store", str(setup.warm_store), "-q"]
    return [
        Job(
            library,
            "ocistore ensure_image(Always)",
            "ocistore",
            [PY, CLIENTS, "ocistore-repull", str(setup.warm_store), ref],
            count_requests=True,
        ),
        Job(
            library,
            "python -c 'import ocistore'",
            "limit",
            [PY, "-c", "import ocistore"],
            note="process start-up floor of every ocistore row",
        ),
        Job(
            library,
            "skopeo copy (layout present)",
            "skopeo",
            skopeo_copy(setup.policy, ref, setup.warm_layouts["gzip"], tag),
            needs=("skopeo",),
            count_requests=True,
        ),
        Job(
            cli,
            "ocistore pull --policy Always",
            "ocistore",
            [*ocistore_cli, "pull", "--policy", "Always", "--plain-http", ref],
            count_requests=True,
        ),
        Job(
            cli,
            "containerd 1.6 ctr pull (present)",
            "containerd",
            runtimes.ctr_pull(ref),
            prepare=_ensure_present(runtimes.ctr_pull(ref)),
            count_requests=True,
            **_on_containerd(runtimes),
        ),
        Job(
            cli,
            "podman 4.3 pull (present)",
            "podman",
            runtimes.podman_pull(ref),
            prepare=_ensure_present(runtimes.podman_pull(ref)),
            needs=("podman",),
            count_requests=True,
        ),
        Job(
            cli,
            "curl -I of the manifest",
            "limit",
            manifest_head(ref),
            needs=("curl",),
            count_requests=True,
            note="one HEAD request as a whole process",
        ),
        stdlib_floor(cli, "a re-pull", REPULL_STDLIB),
    ]


def all_jobs(setup: Setup) -> list[Job]:
    """Every group, in report order."""
    jobs: list[Job] = []
    for compression in ("gzip", "zstd"):
        jobs += pull_jobs(setup, compression)
    for compression in ("gzip", "zstd"):
        jobs += unpack_jobs(setup, compression)
    for compression in ("gzip", "zstd"):
        jobs += pull_unpack_jobs(setup, compression)
    return jobs + repull_jobs(setup)


def _blob_pull_jobs(setup: Setup, group: str, compression: str) -> list[Job]:
    """ocistore's and skopeo's pull into an empty store / layout (blobs only)."""
    ref, tag = setup.refs[compression], setup.tags[compression]
    s = setup.scratch
    return [
        Job(
            group,
            "ocistore pull",
            "ocistore",
            [PY, CLIENTS, "ocistore-pull", str(s / "store"), ref],
            prepare=lambda: _fresh(s / "store"),
            count_requests=True,
        ),
        Job(
            group,
            "skopeo copy docker:// oci:",
            "skopeo",
            skopeo_copy(setup.policy, ref, s / "layout", tag),
            prepare=lambda: _fresh(s / "layout"),
            needs=("skopeo",),
            count_requests=True,
        ),
    ]


def wan_jobs(setup: Setup, link: str, compressed_bytes: int, rate_mbit: float) -> list[Job]:
    """Pulls across the emulated WAN ``link``: ocistore, skopeo, containerd, podman."""
    group = f"pull over WAN, {link} (gzip)"
    s, ref = setup.scratch, setup.refs["gzip"]
    return [
        *_blob_pull_jobs(setup, group, "gzip"),
        *[
            Job(
                group,
                f"ocistore pull, ranges {ranges}",
                "ocistore",
                [PY, CLIENTS, "ocistore-pull", str(s / "store"), ref, "", ranges],
                prepare=lambda: _fresh(s / "store"),
                count_requests=True,
                note=note,
            )
            for ranges, note in (
                ("slow", "4 ranges of 8 MiB per layer if its first chunk is under 16 MB/s"),
                ("on", "4 ranges of 8 MiB per layer from the start"),
            )
        ],
        *runtime_pull_jobs(setup.runtimes, group, setup.refs["gzip"]),
        Job(
            group,
            "size / bandwidth",
            "limit",
            ["sleep", f"{compressed_bytes * 8 / (rate_mbit * 1e6):.3f}"],
            note="the link's floor: compressed bytes at the full rate, no round trips",
        ),
    ]
