"""The work of ``ocistore pull``, apart from how its command line was parsed.

The click command (``registry_commands.pull``) and the quick parser (``cli/quick.py``) both call
:func:`run_pull` with the values they parsed, so both print and fail the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocistore.cli.inputs import load_objects, pull_keyring, registry_options_from
from ocistore.cli.state import State
from ocistore.errors import ImagePullError


def run_pull(
    state: State,
    *,
    image: str,
    policy: str | None = None,
    platform: str | None = None,
    secrets: tuple[Path, ...] = (),
    docker_config: Path | None = None,
    unpack: Path | None = None,
    plain_http: bool | None = None,
    ca_file: str | None = None,
    hosts_dir: str | None = None,
    per_layer: int | None = None,
    fetch_buffer: int | None = None,
) -> None:
    """Ensures ``image`` in the store as kubelet would, printing events and the result."""
    from ocistore.manager import ImageManager

    out = state.output
    manager = ImageManager(
        state.store,
        pull_keyring(docker_config),
        registry=registry_options_from(
            plain_http, ca_file, hosts_dir, per_layer=per_layer, fetch_buffer=fetch_buffer
        ),
        on_event=lambda event: out.say(event.message) if event.reason not in ("Pulled",) else None,
    )
    pull_secrets = load_objects(secrets)
    progress: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if not (out.quiet or out.json):  # scripts get no progress
        from ocistore.cli.progress import PullProgress

        progress = PullProgress(out)
    try:
        with progress as report:
            result = manager.ensure_image(
                image,
                pull_policy=policy,
                pull_secrets=pull_secrets,
                platform=platform,
                unpack=unpack,
                progress=report,
            )
    except ImagePullError as error:
        # For the hint: which credential sources were tried (never the secrets).
        error.credential_sources = _sources_tried(manager, image, pull_secrets)  # type: ignore[attr-defined]
        raise
    final = result.events[-1].message if result.events else ""
    out.result(result, final if not out.quiet else result.digest)


def _sources_tried(manager: Any, image: str, pull_secrets: list[Mapping[str, Any]]) -> list[str]:
    from ocistore.credentials import Keyring
    from ocistore.errors import OciStoreError

    try:
        keyring = Keyring.merge(Keyring.from_secrets(pull_secrets), manager.keyring)
        return [str(credential.source) for credential in keyring.which(image).credentials]
    except OciStoreError:
        return []
