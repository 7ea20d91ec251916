"""``ocistore serve``: the store as a read-only registry mirror."""

from __future__ import annotations

import sys

import click

from ocistore.cli.app import State, cli, handle_errors, pass_state
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
@pass_state
@handle_errors
def serve(
    state: State,
    listen: str,
    serve_private: bool,
    private_registries: tuple[str, ...],
    default_registry: str,
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

    server.run(ServedContent(state.store, policy), listen, announce=announce)
