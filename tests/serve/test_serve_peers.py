"""The fleet's hosts.toml: peers (from DNS) before the upstream, as ocistore's pulls read it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocistore.registry.mirrors import load_hosts
from ocistore.serve import peers


def test_hosts_toml_lists_peers_then_upstream_and_parses_back(tmp_path: Path) -> None:
    text = peers.hosts_toml("https://registry.example.com", ["http://198.18.0.2:5050"])
    path = peers.write_hosts_toml(tmp_path, "registry.example.com", text)
    assert path == tmp_path / "registry.example.com" / "hosts.toml"
    hosts = load_hosts("registry.example.com", tmp_path)
    assert [(h.url, h.is_upstream) for h in hosts] == [
        ("http://198.18.0.2:5050/v2", False),
        ("https://registry.example.com/v2", True),
    ]
    assert hosts[0].capabilities == frozenset({"pull"})


def test_discovered_peers_are_sorted_and_exclude_this_node() -> None:
    answers = ["198.18.7.9", "127.0.0.1", "198.18.7.3", "198.18.7.9"]
    found = peers.discover_peers("peers.example", 5050, resolve=lambda name: answers)
    # 127.0.0.1 is this host; the others are not (nothing here owns 198.18.7.0/24).
    assert found == ["http://198.18.7.3:5050", "http://198.18.7.9:5050"]


def test_a_registry_that_is_not_a_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        peers.write_hosts_toml(tmp_path, "../../etc", "server = 'x'")
    assert list(tmp_path.iterdir()) == []


def test_mirror_hosts_command_writes_the_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ocistore.cli import serve_commands
    from ocistore.cli.app import cli

    assert serve_commands.mirror_hosts is not None
    argv = ["--json", "mirror-hosts", "registry.example.com", "--hosts-dir", str(tmp_path)]
    argv += ["--peer", "http://198.18.0.9:5050", "--peers-dns", "localhost", "--resolve"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    # localhost resolves to this node only: left out.
    assert json.loads(result.output)["mirrors"] == ["http://198.18.0.9:5050"]
    hosts = load_hosts("registry.example.com", tmp_path)
    assert [h.url for h in hosts] == [
        "http://198.18.0.9:5050/v2",
        "https://registry.example.com/v2",
    ]
    assert hosts[0].capabilities == frozenset({"pull", "resolve"})


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:"])
def test_serve_refuses_a_bad_listen_address(listen: str) -> None:
    from click.testing import CliRunner

    from ocistore.cli import serve_commands
    from ocistore.cli.app import cli

    assert serve_commands.serve is not None
    result = CliRunner().invoke(cli, ["serve", "--listen", listen])
    assert result.exit_code == 1
    assert "--listen wants HOST:PORT" in result.output


def test_the_mirror_is_store_side_and_does_not_load_the_registry_client() -> None:
    code = (
        "import json, sys, ocistore.serve.app, ocistore.serve.server, ocistore.serve.peers\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('ocistore', 'httpx')))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert "ocistore.store" in loaded
    assert not {
        m for m in loaded if m.startswith(("httpx", "ocistore.registry", "ocistore.transfer"))
    }
