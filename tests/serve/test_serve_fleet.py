"""A fleet: three nodes in network namespaces share layers through each other's ``serve``.

Each node's ``hosts.toml`` lists its peers' mirrors before the upstream registry, which runs in
a fourth namespace. Node A pulls from upstream; B and C pull through A and each other; the
upstream serves every blob once. Killed mid-transfer, a peer is skipped for the next one and
the blob still arrives verified (resumed with Range from another peer).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ci import cannot_run
from netns import Fleet, NamespacesUnavailable
from regfixtures.registry import REGISTRY_BINARY, Registry, registry_config, registry_requests
from servefixtures import Server, build_image, publish, start_server, wait_for, write_hosts_toml

from ocistore.registry.mirrors import load_hosts
from ocistore.store import Store

NODES = ["up", "a", "b", "c"]
PORT = 5000


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    """Four namespaces on one bridge; in CI (root) failing to make them fails the test."""
    try:
        nodes = Fleet(NODES).start()
    except NamespacesUnavailable as error:
        cannot_run(f"network namespaces unavailable: {error}")
    try:
        yield nodes
    finally:
        nodes.close()


def _upstream(fleet: Fleet, base: Path) -> Registry:
    directory = base / "upstream"
    directory.mkdir()
    config = registry_config(port=PORT, storage=directory / "storage")
    http = config["http"]
    assert isinstance(http, dict)
    http["addr"] = f"{fleet.address('up')}:{PORT}"
    (directory / "config.yml").write_text(yaml.safe_dump(config))
    log = (directory / "registry.log").open("ab")
    process = subprocess.Popen(
        [*fleet.exec("up"), REGISTRY_BINARY, "serve", str(directory / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    url = f"http://{fleet.address('up')}:{PORT}"
    registry = Registry("upstream", url, directory, process)
    probe = [*fleet.exec("up"), "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url + "/v2/"]
    wait_for(lambda: subprocess.run(probe, capture_output=True, text=True).stdout == "200")
    return registry


def _pull(fleet: Fleet, node: str, store: Path, ref: str, hosts: Path | None) -> None:
    argv = [*fleet.exec(node), sys.executable, "-m", "ocistore", "--store", str(store), "-q"]
    argv += ["pull", ref, "--plain-http"] + (["--hosts-dir", str(hosts)] if hosts else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def _serve(fleet: Fleet, node: str, store: Path) -> Server:
    listen = f"{fleet.address(node)}:{PORT}"
    return start_server(store, listen=listen, prefix=fleet.exec(node))


def _blob_gets(registry: Registry) -> list[str]:
    return [p for m, p in registry_requests(registry) if m == "GET" and "/blobs/" in p]


def test_nodes_share_layers_and_skip_a_peer_killed_mid_transfer(
    fleet: Fleet, tmp_path: Path
) -> None:
    upstream = _upstream(fleet, tmp_path)
    servers: list[Server] = []
    try:
        registry = upstream.host
        stores = {node: tmp_path / f"store-{node}" for node in ("a", "b", "c")}
        peers = {node: f"http://{fleet.address(node)}:{PORT}" for node in ("a", "b", "c")}
        image = build_image(
            [{"etc/fleet": b"one\n"}, {"big": os.urandom(6 << 20)}], compression=["gzip", "none"]
        )
        publish(image, f"{registry}/fleet/app:v1", tmp_path, prefix=fleet.exec("up"))
        ref = f"{registry}/fleet/app:v1"

        # A pulls from upstream and serves; B lists C (down: skipped) then A; C lists B, A.
        _pull(fleet, "a", stores["a"], ref, None)
        servers.append(_serve(fleet, "a", stores["a"]))
        hosts_b = tmp_path / "hosts-b"
        write_hosts_toml(hosts_b, registry, [peers["c"], peers["a"]])
        _pull(fleet, "b", stores["b"], ref, hosts_b)
        servers.append(_serve(fleet, "b", stores["b"]))
        hosts_c = tmp_path / "hosts-c"
        write_hosts_toml(hosts_c, registry, [peers["b"], peers["a"]])
        _pull(fleet, "c", stores["c"], ref, hosts_c)
        servers.append(_serve(fleet, "c", stores["c"]))

        blob_gets = _blob_gets(upstream)
        assert sorted(blob_gets) == sorted(set(blob_gets)), "upstream served a blob twice"
        assert len(blob_gets) == 1 + len(image.layers)  # config + layers, once, to A
        assert any(image.layers[1].digest in line for line in servers[0].access_log())  # B <- A
        assert any(image.layers[1].digest in line for line in servers[1].access_log())  # C <- B
        for node in ("b", "c"):
            assert Store(stores[node]).image(ref).digest == image.digest

        # A second image: A and C have it; B pulls it from a throttled A, which dies midway.
        second = build_image([{"big2": os.urandom(24 << 20)}], compression="none")
        ref2 = f"{registry}/fleet/second:v1"
        publish(second, ref2, tmp_path, prefix=fleet.exec("up"))
        _pull(fleet, "a", stores["a"], ref2, None)
        # C finds its peers in DNS (as in a headless Service's A records): itself left out.
        fleet.set_hosts("c", {"peers.fleet.test": [fleet.address(n) for n in ("c", "b", "a")]})
        hosts_c2 = tmp_path / "hosts-c2"
        discover = [*fleet.exec("c"), sys.executable, "-m", "ocistore", "mirror-hosts", registry]
        discover += ["--hosts-dir", str(hosts_c2), "--peers-dns", "peers.fleet.test"]
        discover += ["--port", str(PORT), "--upstream", upstream.url]
        subprocess.run(discover, check=True, capture_output=True)
        listed = [h.url for h in load_hosts(registry, hosts_c2)]
        assert listed == [f"{peers['a']}/v2", f"{peers['b']}/v2", f"{upstream.url}/v2"]
        _pull(fleet, "c", stores["c"], ref2, hosts_c2)
        gets_before = len(_blob_gets(upstream))
        fleet.cap_rate("a", "40mbit")
        hosts_b2 = tmp_path / "hosts-b2"
        write_hosts_toml(hosts_b2, registry, [peers["a"], peers["c"]])
        argv = [*fleet.exec("b"), sys.executable, "-m", "ocistore", "--store", str(stores["b"])]
        puller = subprocess.Popen(
            [*argv, "-q", "pull", ref2, "--plain-http", "--hosts-dir", str(hosts_b2)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        partial = stores["b"] / "ingest" / f"sha256-{second.layers[0].digest[7:]}.partial"
        wait_for(lambda: partial.exists() and partial.stat().st_size > 1 << 20, timeout=120)
        os.kill(servers[0].process.pid, signal.SIGKILL)  # node A dies mid-transfer
        _, err = puller.communicate(timeout=600)
        assert puller.returncode == 0, err
        assert Store(stores["b"]).image(ref2).digest == second.digest
        assert Store(stores["b"]).fsck().ok  # every blob re-hashed: verified, not trusted
        resumed = [line for line in servers[2].access_log() if second.layers[0].digest in line]
        assert any(" 206 " in line for line in resumed)  # C sent the rest, resumed with Range
        assert len(_blob_gets(upstream)) == gets_before  # the upstream was never needed
    finally:
        for server in servers:
            server.stop()
        upstream.stop()
