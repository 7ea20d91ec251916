"""The suite's own environment: loopback traffic is never routed through a proxy."""

from __future__ import annotations

import os
import subprocess
import sys

PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def test_proxy_variables_are_cleared_for_the_tests_and_their_children() -> None:
    assert [name for name in PROXIES if name in os.environ] == []
    assert os.environ["NO_PROXY"] == os.environ["no_proxy"] == "*"
    # A child process (a CLI run, a pulling worker) inherits the cleared environment, and
    # httpx, which ocistore uses, then mounts no proxy at all.
    probe = "import httpx; c = httpx.Client(); print(sorted(str(k) for k in c._mounts))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
