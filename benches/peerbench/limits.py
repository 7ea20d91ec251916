"""SHA-256 throughput: the CPU's own limit (``openssl speed``) beside ocistore's digest."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from peerbench.jobs import CLIENTS


def openssl_sha256_mbps() -> float | None:
    """``openssl speed -evp sha256`` with 1 MiB blocks on one core, in MB/s (None if absent)."""
    if shutil.which("openssl") is None:
        return None
    done = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "-bytes", "1048576", "-evp", "sha256"],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if re.match(r"^(sha256|SHA256)\s", line):
            return float(line.split()[-1].rstrip("k")) / 1000  # 1000s of bytes per second
    return None


def ocistore_sha256_mbps(files: list[Path], repeat: int = 3) -> float:
    """ocistore.digest_file over ``files`` (warm in the page cache), median of ``repeat``."""
    rates = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, CLIENTS, "ocistore-digest", *map(str, files)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout)
        rates.append(result["bytes"] / result["seconds"] / 1e6)
    return statistics.median(rates)
