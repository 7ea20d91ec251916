"""How a failed command ends: one line on stderr, a hint on what to do, exit code 1.

Shared by the click commands (``app.handle_errors``) and the quick ``pull`` path
(``cli/quick.py``), which must end the same way without importing click.
"""

from __future__ import annotations

from ocistore.cli.output import Output
from ocistore.errors import (
    AuthenticationError,
    ImagePullError,
    OciStoreError,
    PlatformNotFoundError,
    RegistryUnavailableError,
)

#: Exit codes (documented in ``ocistore --help``).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _causes(error: BaseException) -> list[BaseException]:
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    return chain


def hint(error: BaseException) -> str | None:
    """What the user can do about ``error``, when there is something to say."""
    tried = getattr(error, "credential_sources", None)
    for cause in _causes(error):
        if isinstance(cause, AuthenticationError):
            if tried is not None:
                what = ", ".join(tried) if tried else "none matched, so the pull was anonymous"
                return (
                    f"credentials tried: {what}. Add one with --secret FILE or "
                    "--docker-config FILE; `ocistore auth which IMAGE` explains the matching"
                )
            return (
                "check the credentials for this registry: --docker-config FILE, --secret FILE, "
                "or `ocistore auth which IMAGE` to see which entry matches"
            )
        if isinstance(cause, RegistryUnavailableError):
            return "is the registry reachable from here? (mirrors: --hosts-dir)"
        if isinstance(cause, PlatformNotFoundError):
            return "choose one of the listed platforms with --platform os/arch[/variant]"
    if isinstance(error, ImagePullError) and error.reason == "ErrImageNeverPull":
        return "pull it first, or use --policy IfNotPresent"
    return None


def report_failure(output: Output, error: OciStoreError | OSError) -> int:
    """Prints ``error`` as one line and a hint (and a JSON document with --json); the exit code."""
    reason = getattr(error, "reason", None)
    text = f"{reason}: {error}" if isinstance(error, ImagePullError) else str(error)
    if isinstance(error, OSError) and not isinstance(error, OciStoreError):
        text = f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    if output.json:
        output.result({"error": text, "type": type(error).__name__, "reason": reason})
    output.error(text, hint(error))
    return EXIT_FAILURE
