"""Registry credentials found the way kubelet finds them: keyring, secrets, plugins, helpers."""

from __future__ import annotations

from ocistore.credentials.dockerconfig import (
    DockerConfig,
    DockerConfigEntry,
    parse_docker_config,
    read_docker_config,
    write_docker_config,
)
from ocistore.credentials.helpers import HelperCredential, run_credential_helper
from ocistore.credentials.keyring import (
    Credential,
    CredentialReport,
    CredentialSource,
    Keyring,
    hash_auth_config,
    node_docker_config_paths,
    normalize_repository,
)
from ocistore.credentials.matching import (
    CredentialMatcher,
    is_default_registry_match,
    normalize_config_key,
    url_match_problem,
    url_matches,
)
from ocistore.credentials.provider import (
    CredentialProvider,
    CredentialProviderConfig,
    CredentialProviderResponse,
    ProviderPlugin,
)
from ocistore.credentials.secretfile import write_secret_file
from ocistore.credentials.secrets import (
    PullSecret,
    docker_registry_secret,
    load_secrets,
    parse_pull_secret,
    parse_secrets,
    secret_from_docker_config,
)

__all__ = [
    "Credential",
    "CredentialMatcher",
    "CredentialProvider",
    "CredentialProviderConfig",
    "CredentialProviderResponse",
    "CredentialReport",
    "CredentialSource",
    "DockerConfig",
    "DockerConfigEntry",
    "HelperCredential",
    "Keyring",
    "ProviderPlugin",
    "PullSecret",
    "auth_which",
    "docker_registry_secret",
    "hash_auth_config",
    "is_default_registry_match",
    "load_secrets",
    "node_docker_config_paths",
    "normalize_config_key",
    "normalize_repository",
    "parse_docker_config",
    "parse_pull_secret",
    "parse_secrets",
    "read_docker_config",
    "run_credential_helper",
    "secret_from_docker_config",
    "url_match_problem",
    "url_matches",
    "write_docker_config",
    "write_secret_file",
]


def auth_which(image: str, keyring: Keyring | None = None) -> CredentialReport:
    """``ocistore auth which IMAGE``: node credentials (or ``keyring``'s) for ``image``."""
    return (keyring if keyring is not None else Keyring.from_node_defaults()).which(image)
