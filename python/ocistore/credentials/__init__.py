"""Registry credentials found the way kubelet finds them: keyring, secrets, plugins, helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocistore._lazy import lazy_attributes

if TYPE_CHECKING:
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
        normalize_repository,
    )
    from ocistore.credentials.matching import (
        CredentialMatcher,
        is_default_registry_match,
        normalize_config_key,
        url_match_problem,
        url_matches,
    )
    from ocistore.credentials.nodepaths import node_docker_config_paths
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

# Each name loads its module on first use: a pull that needs no credentials (no node config,
# no pull secret) does not import the keyring, the plugins or the helpers.
_LAZY: dict[str, str] = {
    "Credential": "ocistore.credentials.keyring",
    "CredentialMatcher": "ocistore.credentials.matching",
    "CredentialProvider": "ocistore.credentials.provider",
    "CredentialProviderConfig": "ocistore.credentials.provider",
    "CredentialProviderResponse": "ocistore.credentials.provider",
    "CredentialReport": "ocistore.credentials.keyring",
    "CredentialSource": "ocistore.credentials.keyring",
    "DockerConfig": "ocistore.credentials.dockerconfig",
    "DockerConfigEntry": "ocistore.credentials.dockerconfig",
    "HelperCredential": "ocistore.credentials.helpers",
    "Keyring": "ocistore.credentials.keyring",
    "ProviderPlugin": "ocistore.credentials.provider",
    "PullSecret": "ocistore.credentials.secrets",
    "docker_registry_secret": "ocistore.credentials.secrets",
    "hash_auth_config": "ocistore.credentials.keyring",
    "is_default_registry_match": "ocistore.credentials.matching",
    "load_secrets": "ocistore.credentials.secrets",
    "node_docker_config_paths": "ocistore.credentials.nodepaths",
    "normalize_config_key": "ocistore.credentials.matching",
    "normalize_repository": "ocistore.credentials.keyring",
    "parse_docker_config": "ocistore.credentials.dockerconfig",
    "parse_pull_secret": "ocistore.credentials.secrets",
    "parse_secrets": "ocistore.credentials.secrets",
    "read_docker_config": "ocistore.credentials.dockerconfig",
    "run_credential_helper": "ocistore.credentials.helpers",
    "secret_from_docker_config": "ocistore.credentials.secrets",
    "url_match_problem": "ocistore.credentials.matching",
    "url_matches": "ocistore.credentials.matching",
    "write_docker_config": "ocistore.credentials.dockerconfig",
    "write_secret_file": "ocistore.credentials.secretfile",
}

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
    from ocistore.credentials.keyring import Keyring

    return (keyring if keyring is not None else Keyring.from_node_defaults()).which(image)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
