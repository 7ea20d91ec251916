"""Commands that talk to registries: pull, ensure, resolve, push, copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ocistore.cli.app import cli, handle_errors, pass_state
from ocistore.cli.inputs import load_objects, pull_keyring, registry_options_from
from ocistore.cli.output import human_size
from ocistore.cli.state import State
from ocistore.policy import PullPolicy

POLICIES = click.Choice([policy.value for policy in PullPolicy], case_sensitive=True)


def registry_options(command: Any) -> Any:
    """The options every registry command shares (TLS, plain HTTP, mirrors)."""
    command = click.option(
        "--plain-http",
        is_flag=True,
        default=None,
        help="Speak HTTP, not HTTPS (default: only for localhost/127.0.0.1).",
    )(command)
    command = click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False),
        help="Extra CA certificate(s) to trust for the registry.",
    )(command)
    command = click.option(
        "--hosts-dir",
        type=click.Path(file_okay=False),
        envvar="OCISTORE_HOSTS_DIR",
        help="containerd-style certs.d directory with hosts.toml mirror files.",
    )(command)
    return command


INPUT_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

docker_config_option = click.option(
    "--docker-config",
    type=INPUT_FILE,
    help="A Docker config.json with credentials (default: kubelet's search path).",
)
secret_option = click.option(
    "--secret",
    "secrets",
    multiple=True,
    type=INPUT_FILE,
    help="A Kubernetes pull Secret (YAML/JSON), tried before node credentials; repeatable.",
)


def parallel_fetch_options(command: Any) -> Any:
    """How large layers are fetched in parallel ranges (containerd 2.1's settings)."""
    command = click.option(
        "--max-concurrent-downloads-per-layer",
        "per_layer",
        type=click.IntRange(min=1),
        help="Parallel Range requests per large layer when its first chunk comes slowly "
        "(default 1: one stream).",
    )(command)
    command = click.option(
        "--concurrent-layer-fetch-buffer",
        "fetch_buffer",
        type=click.IntRange(min=0),
        help="Bytes per Range request; layers of two such chunks or more go parallel "
        "(0: never; default 8 MiB).",
    )(command)
    return command


@cli.command()
@click.argument("image")
@click.option("--policy", type=POLICIES, help="imagePullPolicy (default: Kubernetes' defaulting).")
@click.option("--platform", help="os/arch[/variant] to choose from a multi-arch image.")
@secret_option
@docker_config_option
@click.option(
    "--unpack",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the root filesystem here (streamed while downloading).",
)
@registry_options
@parallel_fetch_options
@pass_state
@handle_errors
def pull(
    state: State,
    image: str,
    policy: str | None,
    platform: str | None,
    secrets: tuple[Path, ...],
    docker_config: Path | None,
    unpack: Path | None,
    plain_http: bool | None,
    ca_file: str | None,
    hosts_dir: str | None,
    per_layer: int | None,
    fetch_buffer: int | None,
) -> None:
    """Pull an image into the store, as kubelet would for a container.

    \b
    Examples:
      ocistore pull nginx:1.27
      ocistore pull 127.0.0.1:5000/app:v1 --policy Always --unpack ./rootfs
      ocistore pull registry.example.com/team/app:2 --secret regcred.yaml
      ocistore pull --platform linux/arm64 debian:12
    """
    from ocistore.cli import pulling

    pulling.run_pull(
        state,
        image=image,
        policy=policy,
        platform=platform,
        secrets=secrets,
        docker_config=docker_config,
        unpack=unpack,
        plain_http=plain_http,
        ca_file=ca_file,
        hosts_dir=hosts_dir,
        per_layer=per_layer,
        fetch_buffer=fetch_buffer,
    )


@cli.command()
@click.option(
    "-f",
    "--filename",
    "manifests",
    multiple=True,
    required=True,
    type=INPUT_FILE,
    help="Pods or workloads (YAML/JSON); repeat for several files.",
)
@click.option(
    "--secrets",
    "secret_files",
    multiple=True,
    type=INPUT_FILE,
    help="Secrets and ServiceAccounts the pods may use (matched by namespace and name).",
)
@docker_config_option
@registry_options
@click.pass_context
@handle_errors
def ensure(
    ctx: click.Context,
    manifests: tuple[Path, ...],
    secret_files: tuple[Path, ...],
    docker_config: Path | None,
    plain_http: bool | None,
    ca_file: str | None,
    hosts_dir: str | None,
) -> None:
    """Ensure every image of the Pods/workloads in a manifest, as kubelet would.

    Pull policies are defaulted as the API server does; pull secrets are looked up by name in
    the pod's namespace (or its ServiceAccount's). One result line per container; exit 1 if any
    container's image could not be ensured.

    \b
    Example:
      ocistore ensure -f deployment.yaml --secrets secrets.yaml
    """
    from ocistore.manager import ImageManager

    state = ctx.find_object(State)
    assert state is not None
    out = state.output
    objects = load_objects(secret_files)
    manager = ImageManager(
        state.store,
        pull_keyring(docker_config),
        registry=registry_options_from(plain_http, ca_file, hosts_dir),
    )
    documents = [obj for path in manifests for obj in load_objects((path,))]
    results = manager.ensure_pod(
        documents,
        secrets=[o for o in objects if o.get("kind") == "Secret"],
        service_accounts=[o for o in objects if o.get("kind") == "ServiceAccount"],
    )
    rows = []
    for item in results:
        if item.result is not None:
            what = "pulled" if item.result.pulled else "present"
            detail = f"{what} {item.result.digest[:19]} {human_size(item.result.size)}"
        else:
            detail = f"{item.reason}: {item.message}"
        rows.append((f"{item.namespace}/{item.pod}", item.container, item.image, detail))
    if out.json:
        out.result(results)
    else:
        out.table(["POD", "CONTAINER", "IMAGE", "RESULT"], rows)
    if any(not item.ok for item in results):
        ctx.exit(1)


@cli.command()
@click.argument("image")
@docker_config_option
@registry_options
@pass_state
@handle_errors
def resolve(
    state: State,
    image: str,
    docker_config: Path | None,
    plain_http: bool | None,
    ca_file: str | None,
    hosts_dir: str | None,
) -> None:
    """Print the digest a tag points to at the registry (one HEAD request).

    \b
    Example:
      ocistore resolve nginx:1.27
    """
    import ocistore

    options = registry_options_from(plain_http, ca_file, hosts_dir, pull_keyring(docker_config))
    digest = ocistore.resolve(image, options=options)
    state.output.result({"image": image, "digest": digest}, digest)


@cli.command()
@click.argument("image")
@click.argument("destination", required=False)
@docker_config_option
@registry_options
@pass_state
@handle_errors
def push(
    state: State,
    image: str,
    destination: str | None,
    docker_config: Path | None,
    plain_http: bool | None,
    ca_file: str | None,
    hosts_dir: str | None,
) -> None:
    """Push an image from the store (to DESTINATION, or to where its name says).

    \b
    Examples:
      ocistore push 127.0.0.1:5000/app:v1
      ocistore push app:v1 registry.example.com/team/app:v1
    """
    import ocistore

    report = ocistore.push(
        destination or image,
        store=state.store,
        source=image if destination else None,
        options=registry_options_from(plain_http, ca_file, hosts_dir, pull_keyring(docker_config)),
    )
    state.output.result(
        report,
        f"Pushed {report.reference} {report.digest}: {report.blobs_uploaded} blobs uploaded "
        f"({human_size(report.bytes_uploaded)}), {report.blobs_mounted} mounted, "
        f"{report.blobs_skipped} already there",
    )


@cli.command()
@click.argument("source")
@click.argument("destination")
@click.option("--platform", help="Copy only this platform of a multi-arch image.")
@docker_config_option
@registry_options
@pass_state
@handle_errors
def copy(
    state: State,
    source: str,
    destination: str,
    platform: str | None,
    docker_config: Path | None,
    plain_http: bool | None,
    ca_file: str | None,
    hosts_dir: str | None,
) -> None:
    """Copy an image from one registry to another (every platform unless --platform).

    \b
    Example:
      ocistore copy docker.io/library/nginx:1.27 127.0.0.1:5000/nginx:1.27
    """
    import ocistore

    keyring = pull_keyring(docker_config)
    report = ocistore.copy(
        source,
        destination,
        platform=platform,
        options=registry_options_from(plain_http, ca_file, hosts_dir, keyring),
    )
    state.output.result(
        report,
        f"Copied {source} to {report.reference} {report.digest} "
        f"({len(report.manifests)} manifests, {report.blobs_uploaded} blobs uploaded)",
    )
