"""Real registries for the tests: Debian's ``docker-registry`` on 127.0.0.1 in several setups.

Everything here runs real processes: the CNCF distribution server, ``openssl`` for the test CA
and the token-signing key, ``htpasswd`` for bcrypt entries. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
TEST_USER = "ocistore-user"
TEST_PASSWORD = "s3cret-Test-Passw0rd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(*args: str | Path, input: bytes | None = None) -> bytes:
    return subprocess.run(
        [str(a) for a in args], input=input, capture_output=True, check=True
    ).stdout


@dataclass(frozen=True)
class TlsFiles:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def make_tls(directory: Path) -> TlsFiles:
    """Generate a CA and a server certificate with ``openssl``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt, ext = (directory / n for n in ("server.key", "server.csr", "server.crt", "ext"))
    _run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-sha256",
        "-keyout", ca_key, "-out", ca_crt, "-subj", "/CN=ocistore-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _run(
        "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _run(
        "openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
        "-CAcreateserial", "-out", crt, "-days", "2", "-sha256", "-extfile", ext,
    )  # fmt: skip
    return TlsFiles(ca_crt, crt, key)


def make_htpasswd(path: Path, user: str, password: str) -> Path:
    """A bcrypt htpasswd file (distribution accepts only bcrypt entries)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_run("htpasswd", "-Bbn", user, password))
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """A registry token issuer (GET and OAuth2 POST) that signs RS256 JWTs the registry trusts.

    Requires the test user's Basic credentials (or a refresh token it issued) unless
    ``anonymous_pull`` lets unauthenticated clients get pull-only tokens.
    """

    service = "ocistore-test-registry"
    issuer = "ocistore-test-issuer"

    def __init__(self, directory: Path, *, ttl: int = 300, anonymous_pull: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.key = directory / "token.key"
        self.cert = directory / "token.crt"
        _run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-sha256", "-keyout", self.key, "-out", self.cert, "-subj", "/CN=ocistore-tokens",
        )  # fmt: skip
        self.x5c = base64.b64encode(
            _run("openssl", "x509", "-in", self.cert, "-outform", "DER")
        ).decode()
        self.ttl = ttl
        self.anonymous_pull = anonymous_pull
        self.refresh_tokens: dict[str, str] = {}
        self.requests: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def sign(self, subject: str, scopes: list[str]) -> str:
        """A JWT granting every requested action on the named repositories."""
        now = int(time.time())
        access = []
        for scope in scopes:
            for item in scope.split():
                kind, _, rest = item.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {
            "iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.ttl,
            "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access,
        }  # fmt: skip
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = _run(
            "openssl", "dgst", "-sha256", "-sign", self.key, input=signing_input.encode()
        )
        return signing_input + "." + _b64url(signature)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="tokens"')
                self.end_headers()
                self.wfile.write(data)

            def _basic(self) -> tuple[str, str] | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user, password

            def _issue(self, method: str, query: dict[str, list[str]]) -> None:
                basic = self._basic()
                grant = (query.get("grant_type") or [""])[0]
                if grant == "password":
                    basic = ((query.get("username") or [""])[0], (query.get("password") or [""])[0])
                subject: str | None = None
                if grant == "refresh_token":
                    subject = issuer.refresh_tokens.get((query.get("refresh_token") or [""])[0])
                elif basic == (TEST_USER, TEST_PASSWORD):
                    subject = TEST_USER
                scopes = query.get("scope", [])
                with issuer._lock:
                    issuer.requests.append(
                        {"method": method, "grant": grant, "user": basic[0] if basic else None,
                         "scopes": scopes, "ok": subject is not None}
                    )  # fmt: skip
                if subject is None:
                    wants_push = any("push" in s for s in scopes)
                    if basic is not None or grant or not issuer.anonymous_pull or wants_push:
                        self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "no"}]})
                        return
                    subject = ""
                body: dict[str, object] = {
                    "token": issuer.sign(subject, scopes), "expires_in": issuer.ttl,
                }  # fmt: skip
                offline = (query.get("offline_token") or query.get("access_type") or [""])[0]
                if subject and offline in ("true", "offline"):
                    refresh = secrets.token_hex(16)
                    issuer.refresh_tokens[refresh] = subject
                    body["refresh_token"] = refresh
                self._reply(200, body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                self._issue("GET", parse_qs(url.query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._issue("POST", parse_qs(self.rfile.read(length).decode()))

        return Handler


@dataclass
class Registry:
    """A running ``docker-registry`` process."""

    name: str
    url: str
    directory: Path
    process: subprocess.Popen[bytes]
    ca_cert: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image references."""
        return urlparse(self.url).netloc

    @property
    def log_path(self) -> Path:
        """The registry's own log (one line per request with access logging on)."""
        return self.directory / "registry.log"

    def stop(self) -> None:
        """Terminate the process (only ours: we hold its Popen)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def registry_config(
    *,
    port: int,
    storage: Path,
    tls: TlsFiles | None = None,
    htpasswd: Path | None = None,
    token: TokenIssuer | None = None,
    proxy_remote: str | None = None,
) -> dict[str, object]:
    """A distribution ``config.yml`` for one of the test setups."""
    http: dict[str, object] = {
        "addr": f"127.0.0.1:{port}",
        "secret": secrets.token_hex(16),
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    if tls is not None:
        http["tls"] = {"certificate": str(tls.server_cert), "key": str(tls.server_key)}
    config: dict[str, object] = {
        "version": "0.1",
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
            # Blob GETs answer with the content, not a redirect (there is no object store).
            "redirect": {"disable": True},
        },
        "http": http,
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "ocistore-basic", "path": str(htpasswd)}}
    if token is not None:
        config["auth"] = {
            "token": {
                "realm": token.url,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.cert),
            }
        }
    if proxy_remote is not None:
        config["proxy"] = {"remoteurl": proxy_remote}
    return config


def start_registry(
    name: str,
    directory: Path,
    config: dict[str, object],
    *,
    ca_cert: Path | None = None,
    netns: str | None = None,
) -> Registry:
    """Start ``docker-registry serve`` with ``config`` (inside the network namespace ``netns``
    if given) and wait until ``/v2/`` answers."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    http = config["http"]
    assert isinstance(http, dict)
    scheme = "https" if "tls" in http else "http"
    url = f"{scheme}://{http['addr']}"
    log = (directory / "registry.log").open("ab")
    inside = ["ip", "netns", "exec", netns] if netns else []  # execs: the pid is the registry's
    process = subprocess.Popen(
        [*inside, REGISTRY_BINARY, "serve", str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    registry = Registry(name, url, directory, process, ca_cert)
    context = ssl.create_default_context(cafile=str(ca_cert)) if ca_cert else None
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"registry {name} exited: {registry.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v2/", timeout=2, context=context):
                return registry
        except urllib.error.HTTPError as error:
            if error.code == 401:  # an auth-protected registry is serving
                return registry
        except OSError:
            pass
        if time.monotonic() > deadline:
            registry.stop()
            raise RuntimeError(f"registry {name} did not become ready on {url}")
        time.sleep(0.05)


def missing_registry_tools() -> str | None:
    """What is missing to start the registries (``scripts/setup`` installs it), if anything."""
    if not Path(REGISTRY_BINARY).exists() or shutil.which("htpasswd") is None:
        return "docker-registry and htpasswd are required (run scripts/setup)"
    return None


@contextlib.contextmanager
def registries_sharing(
    base: Path, storage: Path, setups: dict[str, dict[str, Any]], *, ca_cert: Path | None = None
) -> Iterator[dict[str, Registry]]:
    """One registry per named setup (``setups``: ``registry_config`` keywords), each on a free
    port of 127.0.0.1 and all on one ``storage``; every one started is stopped on exit."""
    started: dict[str, Registry] = {}
    try:
        for name, options in setups.items():
            config = registry_config(port=free_port(), storage=storage, **options)
            started[name] = start_registry(name, base / name, config, ca_cert=ca_cert)
        yield started
    finally:
        for registry in started.values():
            registry.stop()


@contextlib.contextmanager
def running_registry(
    name: str, directory: Path, config: dict[str, object], *, ca_cert: Path | None = None
) -> Iterator[Registry]:
    """Context manager form of :func:`start_registry`."""
    registry = start_registry(name, directory, config, ca_cert=ca_cert)
    try:
        yield registry
    finally:
        registry.stop()


def registry_requests(registry: Registry) -> list[tuple[str, str]]:
    """(method, path) of every request the registry logged so far (its access log)."""
    found = []
    for line in registry.log_path.read_text(errors="replace").splitlines():
        # access log lines: 127.0.0.1 - - [date] "GET /v2/... HTTP/1.1" 200 ...
        if '"' not in line or " HTTP/" not in line:
            continue
        request = line.split('"')[1]
        parts = request.split(" ")
        if len(parts) == 3 and parts[2].startswith("HTTP/"):
            found.append((parts[0], parts[1]))
    return found


def registry_client_addresses(registry: Registry) -> list[str]:
    """The client ``address:port`` of every request the registry completed so far: one port
    per TCP connection (and so per TLS handshake)."""
    found = []
    for line in registry.log_path.read_text(errors="replace").splitlines():
        if 'msg="response completed"' in line and "http.request.remoteaddr=" in line:
            found.append(line.split("http.request.remoteaddr=", 1)[1].split()[0].strip('"'))
    return found


def env_flag(name: str) -> bool:
    """True when an environment variable is set to a true-ish value."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
