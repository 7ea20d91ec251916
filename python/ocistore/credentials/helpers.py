"""Docker credential helpers (``credHelpers`` / ``credsStore`` in ``config.json``).

The Docker CLI runs ``docker-credential-<name> get`` with the server URL on stdin and reads
``{"ServerURL", "Username", "Secret"}`` from stdout; a ``Username`` of ``<token>`` means the
secret is an identity token. kubelet never runs helpers: credentials found this way are for
ocistore's own pulls and are tried after everything kubelet would try.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping

from ocistore._log import get_logger
from ocistore._valueclass import field, valueclass
from ocistore.errors import CredentialHelperError

__all__ = ["HelperCredential", "helper_server_url", "run_credential_helper"]

log = get_logger(__name__)

DEFAULT_HELPER_TIMEOUT = 30.0
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
# Docker's helpers answer this (exit status 1) when they hold nothing for the server.
_NOT_FOUND = "credentials not found in native keychain"
_MAX_OUTPUT = 1024 * 1024


@valueclass(repr=False)
class HelperCredential:
    """What a credential helper returned; never shows the secret."""

    server: str
    username: str
    secret: str = field(repr=False)

    @property
    def is_identity_token(self) -> bool:
        """Whether the secret is an identity (refresh) token rather than a password."""
        return self.username == "<token>"

    def __repr__(self) -> str:
        return f"HelperCredential(server={self.server!r}, username={self.username!r})"


def helper_server_url(registry: str) -> str:
    """The server string Docker passes to helpers for a registry host (Hub's is a URL)."""
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB_SERVER
    return registry


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0][:200] if text else ""


def run_credential_helper(
    name: str,
    server: str,
    *,
    timeout: float = DEFAULT_HELPER_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> HelperCredential | None:
    """Runs ``docker-credential-<name> get`` for ``server``; None when it holds no credential."""
    program = f"docker-credential-{name}"
    environment = dict(os.environ if env is None else env)
    executable = shutil.which(program, path=environment.get("PATH", os.defpath))
    if executable is None:
        raise CredentialHelperError(f"credential helper {program} not found on PATH")
    log.debug("running credential helper %s for %s", program, server)
    try:
        result = subprocess.run(
            [executable, "get"],
            input=server.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(
            f"credential helper {program} timed out after {timeout:g}s for {server}"
        ) from None
    except OSError as err:
        raise CredentialHelperError(f"credential helper {program} failed to start: {err}") from None
    if result.returncode != 0:
        # On failure helpers print an error message (never a secret) to stdout.
        message = _first_line(result.stdout) or _first_line(result.stderr)
        if _NOT_FOUND in message:
            return None
        raise CredentialHelperError(
            f"credential helper {program} failed for {server} "
            f"(exit status {result.returncode}): {message or 'no message'}"
        )
    if len(result.stdout) > _MAX_OUTPUT:
        raise CredentialHelperError(f"credential helper {program}: answer too large")
    try:
        answer = json.loads(result.stdout)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CredentialHelperError(
            f"credential helper {program} answered with invalid JSON for {server}"
        ) from None
    if not isinstance(answer, dict):
        raise CredentialHelperError(f"credential helper {program}: answer is not an object")
    username = answer.get("Username", "")
    secret = answer.get("Secret", "")
    if not isinstance(username, str) or not isinstance(secret, str):
        raise CredentialHelperError(f"credential helper {program}: Username/Secret not strings")
    if not username and not secret:
        return None
    return HelperCredential(server=server, username=username, secret=secret)
