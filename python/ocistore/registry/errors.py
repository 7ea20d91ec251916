"""Turn a registry's error answer into a typed :class:`ocistore.errors.RegistryError`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ocistore.errors import AuthenticationError, RegistryError, RegistryUnavailableError
from ocistore.registry.transport import redact_url

if TYPE_CHECKING:
    import httpx

# The error body is read only this far: it is untrusted and only needed for a message.
MAX_ERROR_BODY = 64 * 1024


def read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether there was more."""
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def parse_error_codes(body: bytes) -> list[tuple[str, str]]:
    """(code, message) pairs from an OCI ``{"errors": [...]}`` body; [] for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict) or not isinstance(document.get("errors"), list):
        return []
    found = []
    for entry in document["errors"]:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            found.append((entry["code"][:64], message[:300] if isinstance(message, str) else ""))
    return found


def registry_error(
    response: httpx.Response, what: str, *, default_code: str | None = None
) -> RegistryError:
    """The typed error for a failed response (reads at most 64 KiB of its body)."""
    import httpx  # loaded with the response already

    status = response.status_code
    body = b""
    try:
        if response.request.method != "HEAD":
            body, _ = read_limited(response, MAX_ERROR_BODY)
    except httpx.HTTPError:
        body = b""
    finally:
        response.close()
    errors = parse_error_codes(body)
    codes = tuple(code for code, _ in errors)
    detail = "; ".join(f"{code}: {message}" if message else code for code, message in errors)
    message = f"{what}: HTTP {status} from {redact_url(response.request.url)}"
    if detail:
        message += f" ({detail})"
    code = codes[0] if codes else (_code_for_status(status) or default_code)
    if status in (401, 403):
        return AuthenticationError(message, status=status, code=code, codes=codes)
    if status in (502, 503, 504) or status == 429:
        return RegistryUnavailableError(message, status=status, code=code, codes=codes)
    return RegistryError(message, status=status, code=code, codes=codes)


def _code_for_status(status: int) -> str | None:
    return {
        401: "UNAUTHORIZED",
        403: "DENIED",
        429: "TOOMANYREQUESTS",
    }.get(status)
