"""Registry authentication: challenges, Basic, Bearer tokens (with credentials or anonymous)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlencode

from ocistore._lazy import pattern
from ocistore._valueclass import field, valueclass
from ocistore.errors import AuthenticationError
from ocistore.registry.errors import read_limited, registry_error
from ocistore.registry.transport import Transport, origin, redact_url

if TYPE_CHECKING:
    import httpx

CLIENT_ID = "ocistore"
# A token response is a small JSON document; refuse anything bigger instead of buffering it.
MAX_TOKEN_RESPONSE = 1024 * 1024
MAX_TOKEN_LENGTH = 256 * 1024
DEFAULT_TOKEN_LIFETIME = 60.0
# Patterns are compiled on first use (``re`` caches them): an anonymous pull never needs them.
_TOKEN_CHARS = r"[A-Za-z0-9\-._~+/]+=*"
HTTP_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"


@runtime_checkable
class CredentialLike(Protocol):
    """What a credential offers (``ocistore.credentials.Credential`` has these attributes)."""

    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def identity_token(self) -> str | None: ...
    @property
    def source(self) -> object:
        """Where the credential came from (printed in messages, never its secret)."""
        ...

    @property
    def hash(self) -> str: ...


@runtime_checkable
class KeyringLike(Protocol):
    """A source of credentials for an image, best first."""

    def lookup(self, image: str) -> Sequence[CredentialLike]: ...


AuthSpec = tuple[str, str] | CredentialLike | KeyringLike | Sequence[CredentialLike] | None


@valueclass(repr=False)
class StaticCredential:
    """A username/password (or identity token) given explicitly."""

    username: str | None
    password: str | None = field(default=None)
    identity_token: str | None = field(default=None)
    source: str = "explicit"

    @property
    def hash(self) -> str:
        """A stable digest identifying the secret (for records; never the secret itself)."""
        import hashlib  # loads OpenSSL: only when a credential is recorded

        material = f"{self.username or ''}\0{self.password or ''}\0{self.identity_token or ''}"
        return "sha256:" + hashlib.sha256(material.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"StaticCredential(username={self.username!r}, source={self.source!r})"


def credentials_for(auth: AuthSpec, image: str) -> list[CredentialLike]:
    """The credentials to try for ``image``, in order."""
    if auth is None:
        return []
    if isinstance(auth, tuple) and len(auth) == 2:
        username, password = auth
        if isinstance(username, str) and isinstance(password, str):
            return [StaticCredential(username, password)]
    if isinstance(auth, KeyringLike):
        return list(auth.lookup(image))
    if isinstance(auth, CredentialLike):
        return [auth]
    return list(auth)  # type: ignore[arg-type]


@valueclass
class Challenge:
    """One ``WWW-Authenticate`` challenge: a scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (several challenges per value are allowed)."""
    found: list[Challenge] = []
    for value in values:
        found.extend(_parse_header(value))
    return found


def _parse_header(value: str) -> list[Challenge]:
    challenges: list[Challenge] = []
    params: dict[str, str] | None = None
    i, n = 0, len(value)
    while i < n:
        if value[i] in " \t,":
            i += 1
            continue
        match = pattern(HTTP_TOKEN).match(value, i)
        if match is None:
            i += 1  # stray character: skip it rather than give up on the header
            continue
        name, j = match.group(), match.end()
        k = j
        while k < n and value[k] in " \t":
            k += 1
        if k < n and value[k] == "=" and params is not None:
            k += 1
            while k < n and value[k] in " \t":
                k += 1
            if k < n and value[k] == '"':
                text, k = _quoted(value, k + 1)
            else:
                end = k
                while end < n and value[end] not in " \t,":
                    end += 1
                text, k = value[k:end], end
            params[name.lower()] = text
            i = k
        else:
            params = {}
            challenges.append(Challenge(name.lower(), params))
            i = j
    return challenges


def _quoted(value: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        elif char == '"':
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    return "".join(out), i


def choose_challenge(challenges: Sequence[Challenge]) -> Challenge | None:
    """The challenge to answer: Bearer before Basic; None if neither is offered."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def _has_password(credential: CredentialLike) -> bool:
    # Keyring credentials use "" for "none"; explicit ones may use None.
    return bool(credential.username) or bool(credential.password)


def _basic(credential: CredentialLike) -> str:
    pair = f"{credential.username or ''}:{credential.password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode()


class _CredentialRejected(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


@valueclass
class _Token:
    """A bearer token and when (by the authenticator's clock) it stops being used."""

    value: str
    expires_at: float


class Authenticator:
    """Authenticates requests to one registry host, trying each credential then anonymous.

    Tokens are cached per (realm, service, scopes, credential) until shortly before they expire;
    a 401 gets one retry with a fresh token, then the next credential.
    """

    def __init__(
        self,
        host: str,
        credentials: Sequence[CredentialLike],
        transport: Transport,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.transport = transport
        self._candidates: list[CredentialLike | None] = [*credentials, None]
        self._current = 0
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, str, int], _Token] = {}
        self._refresh_tokens: dict[int, str] = {}
        self._lock = threading.Lock()
        self._fetch_locks: dict[tuple[str, str, str, int], threading.Lock] = {}
        self.clock = clock
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"Authenticator(host={self.host!r}, credentials={len(self._candidates) - 1})"

    @property
    def credential(self) -> CredentialLike | None:
        """The credential in use (None: anonymous)."""
        with self._lock:
            return self._candidates[self._current]

    def send(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request with the right ``Authorization``, answering 401 challenges."""
        fresh_for: int | None = None
        scopes = list(scopes)
        for _ in range(2 * len(self._candidates) + 3):
            try:
                auth_headers, index = self._authorization(scopes)
            except _CredentialRejected as rejected:
                if self._advance(rejected.index):
                    continue
                raise AuthenticationError(
                    f"{self.host}: the token server refused every credential (and anonymous)",
                    status=401,
                    code="UNAUTHORIZED",
                ) from None
            response = self.transport.send(
                method,
                url,
                headers={**(headers or {}), **auth_headers},
                content=content,
                stream=stream,
                idempotent=idempotent,
            )
            if response.status_code != 401 or origin(response.url) != origin(url):
                return response
            challenge = choose_challenge(
                parse_challenges(response.headers.get_list("www-authenticate"))
            )
            if challenge is None or not (content is None or isinstance(content, bytes)):
                raise registry_error(response, f"{method} {redact_url(url)}")
            response.close()
            # The scope a challenge names belongs to this request; remember the rest for all.
            for scope in challenge.params.get("scope", "").split():
                if scope not in scopes:
                    scopes.append(scope)
            params = {k: v for k, v in challenge.params.items() if k not in ("scope", "error")}
            with self._lock:
                known = self._challenge
                self._challenge = Challenge(challenge.scheme, params)
            if not auth_headers and known is None:
                continue  # first contact: now we know how to authenticate
            if challenge.scheme == "bearer" and auth_headers and fresh_for != index:
                fresh_for = index
                self._forget_tokens(index)
                continue
            if self._advance(index):
                fresh_for = None
                continue
            raise AuthenticationError(
                f"{self.host}: {method} {redact_url(url)} unauthorized with every credential",
                status=401,
                code="UNAUTHORIZED",
            )
        raise AuthenticationError(f"{self.host}: authentication did not settle", status=401)

    def _advance(self, index: int) -> bool:
        with self._lock:
            if self._current > index:
                return True  # another request already moved on
            if self._current == index and index + 1 < len(self._candidates):
                self._current = index + 1
                return True
            return False

    def _forget_tokens(self, index: int) -> None:
        with self._lock:
            for key in [k for k in self._tokens if k[3] == index]:
                del self._tokens[key]

    def _authorization(self, scopes: Sequence[str]) -> tuple[dict[str, str], int]:
        with self._lock:
            challenge, index = self._challenge, self._current
        if challenge is None:
            return {}, index
        candidate = self._candidates[index]
        if challenge.scheme == "basic":
            if candidate is None:
                return {}, index
            if not _has_password(candidate):
                raise _CredentialRejected(index)
            return {"Authorization": _basic(candidate)}, index
        # docker config's "registrytoken": a bearer token issued out of band, used as is.
        direct = getattr(candidate, "registry_token", None) if candidate is not None else None
        if isinstance(direct, str) and direct:
            return {"Authorization": "Bearer " + direct}, index
        return {"Authorization": "Bearer " + self._token(challenge, scopes, index)}, index

    def _token(self, challenge: Challenge, scopes: Sequence[str], index: int) -> str:
        realm = challenge.params.get("realm", "")
        service = challenge.params.get("service", "")
        wanted = sorted(set(scopes))
        key = (realm, service, " ".join(wanted), index)
        with self._lock:
            lock = self._fetch_locks.setdefault(key, threading.Lock())
        with lock:  # one fetch per key at a time; the others reuse its token
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached.expires_at > self.clock():
                return cached.value
            token = self._fetch_token(realm, service, wanted, index)
            with self._lock:
                self._tokens[key] = token
            return token.value

    def _fetch_token(self, realm: str, service: str, scopes: list[str], index: int) -> _Token:
        if not realm.startswith(("https://", "http://")):
            raise AuthenticationError(f"{self.host}: bearer challenge with an unusable realm")
        candidate = self._candidates[index]
        with self._lock:
            refresh = self._refresh_tokens.get(index)
        if refresh is None and candidate is not None:
            refresh = candidate.identity_token
        self.token_fetches += 1
        if refresh:
            form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID}
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)
            response = self.transport.send(
                "POST",
                realm,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content=urlencode(form).encode(),
                stream=True,
                idempotent=True,
            )
        else:
            params = [("service", service)] if service else []
            params += [("scope", scope) for scope in scopes]
            headers = {}
            if candidate is not None:
                if not _has_password(candidate):
                    raise _CredentialRejected(index)
                params += [("offline_token", "true"), ("client_id", CLIENT_ID)]
                headers["Authorization"] = _basic(candidate)
            separator = "&" if "?" in realm else "?"
            url = realm + (separator + urlencode(params) if params else "")
            response = self.transport.send("GET", url, headers=headers, stream=True)
        if response.status_code in (400, 401, 403):
            response.close()
            raise _CredentialRejected(index)
        if response.status_code != 200:
            raise registry_error(response, "token request")
        try:
            body, too_big = read_limited(response, MAX_TOKEN_RESPONSE)
        finally:
            response.close()
        if too_big:
            raise AuthenticationError(f"{self.host}: token response over {MAX_TOKEN_RESPONSE} B")
        return self._parse_token(body, index)

    def _parse_token(self, body: bytes, index: int) -> _Token:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise AuthenticationError(f"{self.host}: token response is not JSON") from None
        if not isinstance(document, dict):
            raise AuthenticationError(f"{self.host}: token response is not a JSON object")
        value = document.get("token") or document.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthenticationError(f"{self.host}: token response carries no token")
        if len(value) > MAX_TOKEN_LENGTH or not pattern(_TOKEN_CHARS).fullmatch(value):
            raise AuthenticationError(f"{self.host}: token is too long or has invalid characters")
        lifetime = document.get("expires_in")
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        refresh = document.get("refresh_token")
        if isinstance(refresh, str) and refresh and len(refresh) <= MAX_TOKEN_LENGTH:
            with self._lock:
                self._refresh_tokens[index] = refresh
        # Renew a little early so a token does not expire between check and use.
        margin = min(30.0, float(lifetime) * 0.1)
        return _Token(value, self.clock() + float(lifetime) - margin)
