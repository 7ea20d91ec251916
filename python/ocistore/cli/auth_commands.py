"""Credential commands: which entry a pull would use, and kubectl-identical pull secrets."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from ocistore.cli.app import cli, handle_errors, pass_state
from ocistore.cli.inputs import load_objects, node_keyring
from ocistore.cli.registry_commands import INPUT_FILE, docker_config_option, secret_option
from ocistore.cli.state import State


@cli.group()
def auth() -> None:
    """Inspect the credentials kubelet would use."""


@auth.command("which")
@click.argument("image")
@docker_config_option
@secret_option
@pass_state
@handle_errors
def which(state: State, image: str, docker_config: Path | None, secrets: tuple[Path, ...]) -> None:
    """Show which credentials a pull of IMAGE tries, in order, without the secrets.

    \b
    Examples:
      ocistore auth which registry.example.com/team/app:1
      ocistore auth which nginx --docker-config ~/.docker/config.json
    """
    from ocistore.credentials import Keyring

    keyring = node_keyring(docker_config)
    if secrets:
        keyring = Keyring.merge(Keyring.from_secrets(load_objects(secrets)), keyring)
    report = keyring.which(image)
    document = {
        "image": report.image,
        "repository": report.repository,
        "credentials": [
            {
                "username": c.username,
                "key": c.key,
                "source": str(c.source),
                "used_by_kubelet": c.source.used_by_kubelet,
            }
            for c in report.credentials
        ],
        "notes": list(report.notes),
    }
    state.output.result(document, str(report))


@cli.group("create-secret")
def create_secret() -> None:
    """Create Kubernetes Secrets (printed, like kubectl --dry-run=client)."""


@create_secret.command("docker-registry")
@click.argument("name")
@click.option("--docker-server", default="https://index.docker.io/v1/", show_default=True)
@click.option("--docker-username")
@click.option("--docker-password")
@click.option("--docker-email")
@click.option(
    "--from-docker-config",
    type=INPUT_FILE,
    help="Turn an existing Docker config.json into the Secret instead.",
)
@click.option("-n", "--namespace")
@click.option(
    "-o",
    "--output",
    "output_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
)
@pass_state
@handle_errors
def docker_registry(
    state: State,
    name: str,
    docker_server: str,
    docker_username: str | None,
    docker_password: str | None,
    docker_email: str | None,
    from_docker_config: Path | None,
    namespace: str | None,
    output_format: str,
) -> None:
    """Print the Secret `kubectl create secret docker-registry` would create.

    \b
    Examples:
      ocistore create-secret docker-registry regcred --docker-server=registry.example.com \\
          --docker-username=jane --docker-password="$PASS" -n team > regcred.yaml
      ocistore create-secret docker-registry regcred --from-docker-config ~/.docker/config.json
    """
    from ocistore.credentials import docker_registry_secret, secret_from_docker_config

    if from_docker_config is not None:
        secret = secret_from_docker_config(name, from_docker_config, namespace)
    else:
        if not docker_username or docker_password is None:
            raise click.UsageError(
                "--docker-username and --docker-password are required (or use --from-docker-config)"
            )
        secret = docker_registry_secret(
            name, docker_server, docker_username, docker_password, docker_email, namespace
        )
    if output_format == "json" or state.output.json:
        click.echo(json.dumps(secret, indent=4))
    else:
        click.echo(yaml.safe_dump(secret, sort_keys=True, default_flow_style=False), nl=False)
