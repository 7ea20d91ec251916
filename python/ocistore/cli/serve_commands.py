"""``ocistore serve``: the store as a read-only registry mirror."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ocistore.cli.app import cli, handle_errors, pass_state
from ocistore.cli.state import State
from ocistore.errors import OciStoreError


class ServeExtraMissingError(OciStoreError):
    """aiohttp (the ``serve`` extra) is not installed."""


@cli.command()
@click.option(
    "--listen",
    default="127.0.0.1:5050",
    show_default=True,
    help="HOST:PORT to listen on (port 0 picks a free one; 0.0.0.0 for every address).",
)
@click.option(
    "--serve-private",
    is_flag=True,
    help="Also serve images pulled with credentials, and imported or built ones.",
)
@click.option(
    "--serve-private-registry",
    "private_registries",
    multiple=True,
    metavar="REGISTRY",
    help="Serve every image of this registry, credentials or not; repeatable.",
)
@click.option(
    "--default-registry",
    default="docker.io",
    show_default=True,
    help="The registry a request without containerd's ?ns= parameter is for.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds a connection may go without a complete request before it is closed.",
)
@pass_state
@handle_errors
def serve(
    state: State,
    listen: str,
    serve_private: bool,
    private_registries: tuple[str, ...],
    default_registry: str,
    idle_timeout: float,
) -> None:
    """Serve the store read-only as an OCI registry mirror (for containerd and peer nodes).

    Only images pulled without any credential are served, unless --serve-private or
    --serve-private-registry say otherwise. One access log line per request goes to stderr;
    /metrics counts bytes and hits. The first stdout line is the URL it listens on.

    \b
    Examples:
      ocistore serve --listen 0.0.0.0:5050
      ocistore serve --listen 127.0.0.1:0 --serve-private-registry registry.example.com
    \b
    containerd (/etc/containerd/certs.d/docker.io/hosts.toml):
      server = "https://registry-1.docker.io"
      [host."http://127.0.0.1:5050"]
        capabilities = ["pull", "resolve"]
    """
    try:
        from ocistore.serve import server
    except ImportError as error:
        raise ServeExtraMissingError(
            f"ocistore serve needs aiohttp: pip install 'ocistore[serve]' ({error})"
        ) from None
    from ocistore.serve import ServedContent, ServePolicy

    policy = ServePolicy(
        serve_private=serve_private,
        private_registries=frozenset(private_registries),
        default_registry=default_registry,
    )
    if not state.output.quiet:
        server.log_to_stderr()

    def announce(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()

    content = ServedContent(state.store, policy)
    server.run(content, listen, announce=announce, idle_timeout=idle_timeout)


@cli.command("mirror-hosts")
@click.argument("registry")
@click.option(
    "--hosts-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The certs.d directory to write REGISTRY/hosts.toml into.",
)
@click.option("--peer", "peer_urls", multiple=True, metavar="URL", help="A peer mirror URL.")
@click.option("--peers-dns", metavar="NAME", help="A DNS name whose A records are the peers.")
@click.option("--port", default=5050, show_default=True, help="The peers' serve port.")
@click.option("--upstream", metavar="URL", help="The registry's URL (default https://REGISTRY).")
@click.option(
    "--resolve", is_flag=True, help="Let peers resolve tags too (default: pull by digest only)."
)
@pass_state
@handle_errors
def mirror_hosts(
    state: State,
    registry: str,
    hosts_dir: Path,
    peer_urls: tuple[str, ...],
    peers_dns: str | None,
    port: int,
    upstream: str | None,
    resolve: bool,
) -> None:
    """Write REGISTRY's hosts.toml: the peers' mirrors first, then the upstream.

    Peers come from --peer and from the A records of --peers-dns (a headless Service), this
    node's own addresses left out, in address order. containerd and `ocistore pull
    --hosts-dir` read the result.

    \b
    Examples:
      ocistore mirror-hosts docker.io --hosts-dir /etc/containerd/certs.d \\
          --upstream https://registry-1.docker.io --peers-dns ocistore-mirror.kube-system.svc
    """
    from ocistore.serve import peers

    mirrors = list(peer_urls)
    if peers_dns:
        mirrors += [url for url in peers.discover_peers(peers_dns, port) if url not in mirrors]
    capabilities = ("pull", "resolve") if resolve else ("pull",)
    text = peers.hosts_toml(upstream or f"https://{registry}", mirrors, capabilities)
    path = peers.write_hosts_toml(hosts_dir, registry, text)
    state.output.result({"path": str(path), "mirrors": mirrors}, str(path))
