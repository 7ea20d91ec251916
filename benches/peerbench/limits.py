"""Measured in-process: SHA-256 (beside ``openssl speed``), warm re-pulls (beside ``curl -I``)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from peerbench.jobs import CLIENTS

BLOCK = 1 << 20  # the block both sides hash: 1 MiB, in memory, on one core


def openssl_sha256_mbps() -> float | None:
    """``openssl speed -evp sha256`` with 1 MiB blocks on one core, in MB/s (None if absent).

    openssl divides by the CPU time it used (not wall time, unless ``-elapsed``), so the rate
    does not drop when other jobs share the core; ocistore's side is measured the same way.
    """
    if shutil.which("openssl") is None:
        return None
    done = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "-bytes", str(BLOCK), "-evp", "sha256"],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if re.match(r"^(sha256|SHA256)\s", line):
            return float(line.split()[-1].rstrip("k")) / 1000  # 1000s of bytes per second
    return None


def ocistore_sha256_mbps() -> float:
    """``ocistore.Digester.update`` of a 1 MiB buffer for 2 CPU seconds, in MB/s of CPU time."""
    done = subprocess.run(
        [sys.executable, CLIENTS, "ocistore-sha256", str(BLOCK), "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    return float(result["bytes"] / result["cpu_seconds"] / 1e6)


def sha256_rates(rounds: int = 3) -> dict[str, float | None]:
    """Both sides in turn, ``rounds`` times; the medians."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        ours.append(ocistore_sha256_mbps())
        rate = openssl_sha256_mbps()
        if rate is not None:
            theirs.append(rate)
    return {
        "ocistore": statistics.median(ours),
        "openssl": statistics.median(theirs) if theirs else None,
    }


def warm_repull_ms(
    store: Path, ref: str, manifest_head: list[str], rounds: int = 5
) -> dict[str, float]:
    """A warm ``ensure_image(Always)`` inside one long-lived process against one ``curl -I`` of
    the manifest as a whole process, in turn; the medians in milliseconds."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, CLIENTS, "ocistore-warm-repulls", str(store), ref, "10"],
            capture_output=True,
            text=True,
            check=True,
        )
        ours += json.loads(done.stdout)
        for _ in range(10):
            start = time.perf_counter()
            subprocess.run(manifest_head, check=True)
            theirs.append(time.perf_counter() - start)
    return {
        "ocistore_ms": statistics.median(ours) * 1e3,
        "curl_ms": statistics.median(theirs) * 1e3,
    }
