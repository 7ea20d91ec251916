"""Image references: the distribution/reference grammar, Docker Hub normalisation, errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ocistore
from ocistore import InvalidReferenceError, OciStoreError, Reference, apply_default_tag

F64 = "f" * 64
D256 = "sha256:" + F64
REDIS = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
BUSYBOX = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
D512 = "sha512:" + "f" * 128

# (input, registry, repository, tag, digest, normalised string, familiar string)
VALID: list[tuple[str, str, str, str | None, str | None, str, str]] = [
    # Docker Hub normalisation (normalize_test.go TestParseRepositoryInfo / TestParseAnyReference)
    ("nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx", "nginx"),
    ("nginx:1.27", "docker.io", "library/nginx", "1.27", None, "docker.io/library/nginx:1.27", "nginx:1.27"),
    ("redis", "docker.io", "library/redis", None, None, "docker.io/library/redis", "redis"),
    ("redis:latest", "docker.io", "library/redis", "latest", None, "docker.io/library/redis:latest", "redis:latest"),
    ("docker.io/library/redis:latest", "docker.io", "library/redis", "latest", None, "docker.io/library/redis:latest", "redis:latest"),
    (f"redis@{REDIS}", "docker.io", "library/redis", None, REDIS, f"docker.io/library/redis@{REDIS}", f"redis@{REDIS}"),
    ("dmcgowan/myapp", "docker.io", "dmcgowan/myapp", None, None, "docker.io/dmcgowan/myapp", "dmcgowan/myapp"),
    ("dmcgowan/myapp:latest", "docker.io", "dmcgowan/myapp", "latest", None, "docker.io/dmcgowan/myapp:latest", "dmcgowan/myapp:latest"),
    (f"dmcgowan/myapp@{REDIS}", "docker.io", "dmcgowan/myapp", None, REDIS, f"docker.io/dmcgowan/myapp@{REDIS}", f"dmcgowan/myapp@{REDIS}"),
    ("dbcc1", "docker.io", "library/dbcc1", None, None, "docker.io/library/dbcc1", "dbcc1"),
    ("a" * 63, "docker.io", "library/" + "a" * 63, None, None, "docker.io/library/" + "a" * 63, "a" * 63),
    ("fooo/bar", "docker.io", "fooo/bar", None, None, "docker.io/fooo/bar", "fooo/bar"),
    ("index.docker.io/fooo/bar", "docker.io", "fooo/bar", None, None, "docker.io/fooo/bar", "fooo/bar"),
    ("library/ubuntu", "docker.io", "library/ubuntu", None, None, "docker.io/library/ubuntu", "ubuntu"),
    ("index.docker.io/library/ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", None, None, "docker.io/library/ubuntu-12.04-base", "ubuntu-12.04-base"),
    ("docker.io/foo", "docker.io", "library/foo", None, None, "docker.io/library/foo", "foo"),
    ("index.docker.io/debian", "docker.io", "library/debian", None, None, "docker.io/library/debian", "debian"),
    ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", None, None, "docker.io/library/foo/bar", "library/foo/bar"),
    ("store/foo/bar", "docker.io", "store/foo/bar", None, None, "docker.io/store/foo/bar", "store/foo/bar"),
    ("other/library", "docker.io", "other/library", None, None, "docker.io/other/library", "other/library"),
    ("test_com/foo", "docker.io", "test_com/foo", None, None, "docker.io/test_com/foo", "test_com/foo"),
    ("docker/migrator", "docker.io", "docker/migrator", None, None, "docker.io/docker/migrator", "docker/migrator"),
    (f"busybox:latest@{BUSYBOX}", "docker.io", "library/busybox", "latest", BUSYBOX, f"docker.io/library/busybox:latest@{BUSYBOX}", f"busybox:latest@{BUSYBOX}"),
    # A single element is always a Docker Hub name, even when it looks like a host.
    ("test.com:5000", "docker.io", "library/test.com", "5000", None, "docker.io/library/test.com:5000", "test.com:5000"),
    ("test.com:tag", "docker.io", "library/test.com", "tag", None, "docker.io/library/test.com:tag", "test.com:tag"),
    ("192.168.1.1", "docker.io", "library/192.168.1.1", None, None, "docker.io/library/192.168.1.1", "192.168.1.1"),
    ("192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", None, "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
    ("localhost", "docker.io", "library/localhost", None, None, "docker.io/library/localhost", "localhost"),
    ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", None, "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080"),
    ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", None, "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"),
    # Hosts, ports, IPv6
    ("localhost/foo", "localhost", "foo", None, None, "localhost/foo", "localhost/foo"),
    ("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", None, "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("test.com/repo:tag", "test.com", "repo", "tag", None, "test.com/repo:tag", "test.com/repo:tag"),
    ("test:5000/repo", "test:5000", "repo", None, None, "test:5000/repo", "test:5000/repo"),
    (f"test:5000/repo@{D256}", "test:5000", "repo", None, D256, f"test:5000/repo@{D256}", f"test:5000/repo@{D256}"),
    (f"test:5000/repo:tag@{D256}", "test:5000", "repo", "tag", D256, f"test:5000/repo:tag@{D256}", f"test:5000/repo:tag@{D256}"),
    ("test-com:8080/foo", "test-com:8080", "foo", None, None, "test-com:8080/foo", "test-com:8080/foo"),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", None, None, "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo"),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None, "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com"),
    (f"xn--7o8h.com/myimage:xn--7o8h.com@{D512}", "xn--7o8h.com", "myimage", "xn--7o8h.com", D512, f"xn--7o8h.com/myimage:xn--7o8h.com@{D512}", f"xn--7o8h.com/myimage:xn--7o8h.com@{D512}"),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", None, "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
    ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", "test.example.com", None, "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com"),
    ("192.168.1.1/repo", "192.168.1.1", "repo", None, None, "192.168.1.1/repo", "192.168.1.1/repo"),
    ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", None, "192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050"),
    ("127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian", None, None, "127.0.0.1:5000/library/debian", "127.0.0.1:5000/library/debian"),
    ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", None, None, "[2001:db8::1]/repo", "[2001:db8::1]/repo"),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", None, "[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo:tag"),
    (f"[2001:db8::1]:5000/repo:tag@{D256}", "[2001:db8::1]:5000", "repo", "tag", D256, f"[2001:db8::1]:5000/repo:tag@{D256}", f"[2001:db8::1]:5000/repo:tag@{D256}"),
    ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", None, None, "[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo"),
    ("[::1]:5000/repo", "[::1]:5000", "repo", None, None, "[::1]:5000/repo", "[::1]:5000/repo"),
    # Upper case is allowed in a host (and makes it one) and in tags
    ("Foo/bar", "Foo", "bar", None, None, "Foo/bar", "Foo/bar"),
    ("DOCKER/docker", "DOCKER", "docker", None, None, "DOCKER/docker", "DOCKER/docker"),
    ("Uppercase/lowercase:tag", "Uppercase", "lowercase", "tag", None, "Uppercase/lowercase:tag", "Uppercase/lowercase:tag"),
    (f"localhost:8080@{D256}", "docker.io", "library/localhost", "8080", D256, f"docker.io/library/localhost:8080@{D256}", f"localhost:8080@{D256}"),
    ("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", None, "docker.io/library/lowercase:Uppercase", "lowercase:Uppercase"),
    # Separators
    ("docker---rules/docker", "docker.io", "docker---rules/docker", None, None, "docker.io/docker---rules/docker", "docker---rules/docker"),
    ("dock__er/docker", "docker.io", "dock__er/docker", None, None, "docker.io/dock__er/docker", "dock__er/docker"),
    ("d/docker", "docker.io", "d/docker", None, None, "docker.io/d/docker", "d/docker"),
    ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", None, None, "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"),
    ("docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker.io", "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", None, None, "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"),
    # Tags: 128 characters, leading underscore
    ("app:" + "t" * 128, "docker.io", "library/app", "t" * 128, None, "docker.io/library/app:" + "t" * 128, "app:" + "t" * 128),
    ("app:_x.Y-z", "docker.io", "library/app", "_x.Y-z", None, "docker.io/library/app:_x.Y-z", "app:_x.Y-z"),
    # Length: only the path counts (255), not the registry
    ("example.com/" + "a" * 255 + ":tag", "example.com", "a" * 255, "tag", None, "example.com/" + "a" * 255 + ":tag", "example.com/" + "a" * 255 + ":tag"),
    ("a/" * 127 + "a:tag-puts-this-over-max", "docker.io", "a/" * 127 + "a", "tag-puts-this-over-max", None, "docker.io/" + "a/" * 127 + "a:tag-puts-this-over-max", "a/" * 127 + "a:tag-puts-this-over-max"),
    # Familiar form keeps docker.io where dropping it would name another registry
    ("docker.io/foo.bar/app", "docker.io", "foo.bar/app", None, None, "docker.io/foo.bar/app", "docker.io/foo.bar/app"),
    ("docker.io/localhost/app", "docker.io", "localhost/app", None, None, "docker.io/localhost/app", "docker.io/localhost/app"),
]  # fmt: skip

# (input, exact error message)
INVALID: list[tuple[str, str]] = [
    ("", "repository name must have at least one component"),
    (":justtag", "invalid reference format: repository name must have at least one component"),
    (f"@{D256}", "invalid reference format: a digest needs a repository name"),
    ("repo@sha256:" + "f" * 34, "invalid checksum digest length: sha256 needs 64 hex digits, got 34"),
    (f"repo@sha256:{'f' * 63}", "invalid checksum digest length: sha256 needs 64 hex digits, got 63"),
    (f"validname@invaliddigest:{F64}", "unsupported digest algorithm: 'invaliddigest' (sha256 and sha512 are supported)"),
    (f"repo@sha384:{'f' * 96}", "unsupported digest algorithm: 'sha384' (sha256 and sha512 are supported)"),
    (f"repo@sha256:{'F' * 64}", "invalid checksum digest format: the hex digits must be lowercase"),
    ("repo@sha256:abc", "invalid reference format: digest 'sha256:abc' is not algorithm:hex with at least 32 hex digits"),
    (f"repo@{D256}@{D256}", "invalid reference format: more than one '@'"),
    ("Uppercase:tag", "invalid reference format: repository name (library/Uppercase) must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "invalid reference format: repository name (Uppercase/lowercase) must be lowercase"),
    ("docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
    ("docker.io/docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
    ("a/" * 128 + "a:tag", "repository name must not be more than 255 characters"),
    ("example.com/" + "a" * 256 + ":tag", "repository name must not be more than 255 characters"),
    ("aa/asdf$$^/aa", "invalid reference format: repository name component 'asdf$$^' may contain only lowercase letters, digits and the separators '.', '_', '__', '-'"),
    ("https://github.com/docker/docker", "invalid reference format: registry port '' must be a number"),
    ("-docker", "invalid reference format: repository name component '-docker' must start and end with a lowercase letter or digit"),
    ("-docker/docker", "invalid reference format: repository name component '-docker' must start and end with a lowercase letter or digit"),
    ("docker-/docker", "invalid reference format: repository name component 'docker-' must start and end with a lowercase letter or digit"),
    ("-docker.io/docker/docker", "invalid reference format: registry host '-docker.io' is not a valid host name (letters, digits and '-' between dots, not starting or ending with '-')"),
    ("docker///docker", "invalid reference format: repository name must not have empty components ('//' or a trailing '/')"),
    ("docker.io/docker///docker", "invalid reference format: repository name must not have empty components ('//' or a trailing '/')"),
    ("docker/", "invalid reference format: repository name must not have empty components ('//' or a trailing '/')"),
    ("____/____", "invalid reference format: repository name component '____' must start and end with a lowercase letter or digit"),
    # A first component with a '.' is taken for a host (splitDockerDomain), as upstream does.
    ("dock..er/docker", "invalid reference format: registry host 'dock..er' is not a valid host name (letters, digits and '-' between dots, not starting or ending with '-')"),
    ("dock_.er/docker", "invalid reference format: registry host 'dock_.er' is not a valid host name (letters, digits and '-' between dots, not starting or ending with '-')"),
    ("foo/dock..er", "invalid reference format: repository name component 'dock..er' may separate its parts only by one '.', one '_', '__' or a run of '-'"),
    ("foo/dock-.er", "invalid reference format: repository name component 'dock-.er' may separate its parts only by one '.', one '_', '__' or a run of '-'"),
    ("dock___er/docker", "invalid reference format: repository name component 'dock___er' may separate its parts only by one '.', one '_', '__' or a run of '-'"),
    ("[fc00::1]", "invalid reference format: registry host '[fc00::1]' needs a '/repository'"),
    ("[2001:db8::1]:5000", "invalid reference format: registry host '[2001:db8::1]:5000' needs a '/repository'"),
    ("[2001:db8::1]:tag", "invalid reference format: repository name component '[2001:db8::1]' may contain only lowercase letters, digits and the separators '.', '_', '__', '-'"),
    ("nginx:1.0:2", "invalid reference format: repository name component 'nginx:1.0' may contain only lowercase letters, digits and the separators '.', '_', '__', '-'"),
    ("fc00::1:5000/debian", "invalid reference format: registry port ':1:5000' must be a number"),
    ("[fe80::1%eth0]:5000/debian", "invalid reference format: registry host '[fe80::1%eth0]' is not an IPv6 address (hex digits and ':' only)"),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid reference format: registry host '[2001:db8:3:4::192.0.2.33]' is not an IPv6 address (hex digits and ':' only)"),
    ("[fe80::1%@invalidzone]:5000/repo", "invalid reference format: registry host '[fe80::1%@invalidzone]' is not an IPv6 address (hex digits and ':' only)"),
    ("[::1/repo", "invalid reference format: registry host '[::1' has an unclosed '['"),
    ("[::1]x/repo", "invalid reference format: registry host '[::1]x' has characters after ']'"),
    ("bad_hostname.com:8080/myapp:tag", "invalid reference format: registry host 'bad_hostname.com' is not a valid host name (letters, digits and '-' between dots, not starting or ending with '-')"),
    ("foo_bar.com/app", "invalid reference format: registry host 'foo_bar.com' is not a valid host name (letters, digits and '-' between dots, not starting or ending with '-')"),
    ("example.com:port/app", "invalid reference format: registry port 'port' must be a number"),
    ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "invalid repository name (1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a), cannot specify 64-byte hexadecimal strings"),
    ("app:" + "t" * 129, "invalid reference format: tag is longer than 128 characters"),
    ("app:", "invalid reference format: tag must not be empty"),
    ("app:-x", "invalid reference format: tag '-x' must start with a letter, digit or '_'"),
    ("app:.x", "invalid reference format: tag '.x' must start with a letter, digit or '_'"),
    ("app:a+b", "invalid reference format: tag 'a+b' may contain only letters, digits, '_', '.' and '-'"),
    ("app\n", "invalid reference format: repository name component 'app\\n' may contain only lowercase letters, digits and the separators '.', '_', '__', '-'"),
    ("app:1\n", "invalid reference format: tag '1\\n' may contain only letters, digits, '_', '.' and '-'"),
    (" nginx", "invalid reference format: repository name component ' nginx' may contain only lowercase letters, digits and the separators '.', '_', '__', '-'"),
    ("ngïnx", "invalid reference format: repository name component 'ngïnx' may contain only lowercase letters, digits and the separators '.', '_', '__', '-'"),
    ("Nginx", "invalid reference format: repository name (library/Nginx) must be lowercase"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "normalised", "familiar"), VALID
)
def test_valid_references(
    text: str,
    registry: str,
    repository: str,
    tag: str | None,
    digest: str | None,
    normalised: str,
    familiar: str,
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert str(ref) == normalised
    assert ref.familiar == familiar
    assert Reference.parse(normalised) == ref
    assert Reference.parse(familiar) == ref


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_references_name_the_rule(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse(text)
    assert str(caught.value) == message


def test_error_is_both_ocistore_error_and_value_error() -> None:
    with pytest.raises(OciStoreError):
        Reference.parse("UPPER")
    with pytest.raises(ValueError):
        Reference.parse("UPPER")
    assert ocistore.InvalidReferenceError is InvalidReferenceError


def test_huge_inputs_give_short_errors() -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse("a." * 50_000 + "/x")
    assert len(str(caught.value)) < 300
    assert "..." in str(caught.value)


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        Reference.parse(b"nginx")  # type: ignore[arg-type]


def test_reference_is_immutable_and_hashable() -> None:
    ref = Reference.parse("nginx:1.27")
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]
    same = {Reference.parse("docker.io/library/nginx:1.27"), Reference.parse("nginx:1.27")}
    assert same == {ref}
    assert Reference.parse("nginx") != Reference.parse("nginx:latest")


def test_derived_references() -> None:
    ref = Reference.parse("nginx")
    assert str(ref.with_default_tag()) == "docker.io/library/nginx:latest"
    tagged = Reference.parse("nginx:1.27")
    assert tagged.with_default_tag() is tagged
    pinned = Reference.parse(f"nginx@{D256}")
    assert pinned.with_default_tag() == pinned  # a digest alone gets no tag
    assert ref.name == "docker.io/library/nginx"
    assert ref.api_registry == "registry-1.docker.io"
    assert Reference.parse("quay.io/a/b").api_registry == "quay.io"
    assert ref.identifier == "latest"
    assert tagged.identifier == "1.27"
    assert Reference.parse(f"nginx:1.27@{D256}").identifier == D256
    both = tagged.with_digest(D256)
    assert str(both) == f"docker.io/library/nginx:1.27@{D256}"
    assert str(both.with_tag("2")) == f"docker.io/library/nginx:2@{D256}"
    assert str(both.to_docker_ref()) == f"docker.io/library/nginx@{D256}"
    assert str(ref.to_docker_ref()) == "docker.io/library/nginx:latest"
    assert both.without_tag_and_digest() == ref
    assert Reference.parse("gcr.io/library/busybox").familiar_name == "gcr.io/library/busybox"


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("-foo", "invalid tag format: tag '-foo' must start with a letter, digit or '_'"),
        ("", "invalid tag format: tag must not be empty"),
        ("x" * 129, "invalid tag format: tag is longer than 128 characters"),
    ],
)
def test_with_tag_validates(tag: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse("busybox").with_tag(tag)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("foo", "invalid checksum digest format"),
        (":" + F64, "invalid checksum digest format"),
        ("sha256:", "invalid checksum digest format"),
        ("md5:../../etc", "invalid checksum digest format"),
        ("sha256:" + "g" * 64, "invalid checksum digest format"),
        ("sha512:" + F64, "invalid checksum digest length: sha512 needs 128 hex digits, got 64"),
    ],
)
def test_with_digest_validates(digest: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        Reference.parse("busybox").with_digest(digest)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("index.docker.io", "library/x"), "must be written as 'docker.io'"),
        (("docker.io", "nginx"), "must be written as library/'nginx'"),
        (("bad host", "x"), "invalid registry host"),
        (("quay.io", "Bad"), "must be lowercase"),
        (("quay.io", "a" * 256), "not be more than 255"),
    ],
)
def test_direct_construction_is_validated(args: tuple[str, str], fragment: str) -> None:
    with pytest.raises(InvalidReferenceError, match=re.escape(fragment)):
        Reference(*args)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", "busybox:latest"),
        ("docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.0", "busybox:1.0"),
        (f"busybox@{D256}", f"busybox@{D256}"),
        (f"busybox:1.0@{D256}", f"busybox:1.0@{D256}"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
    ],
)
def test_apply_default_tag_keeps_the_original_string(image: str, expected: str) -> None:
    assert apply_default_tag(image) == expected


def test_apply_default_tag_rejects_invalid_names() -> None:
    with pytest.raises(InvalidReferenceError):
        apply_default_tag("Busybox")


# --- properties ------------------------------------------------------------------------------
# The grammar again, written out independently from the spec table (kubelet-semantics.md §1.1).
ALNUM = "[a-z0-9]+"
SEP = "(?:[._]|__|-+)"
COMPONENT = f"{ALNUM}(?:{SEP}{ALNUM})*"
PATH = f"{COMPONENT}(?:/{COMPONENT})*"
LABEL = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
HOST = rf"(?:{LABEL}(?:\.{LABEL})*|\[[a-fA-F0-9:]+\])"
DOMAIN = f"{HOST}(?::[0-9]+)?"
TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
GRAMMAR = re.compile(f"(?:{DOMAIN}/)?{PATH}(?::{TAG})?(?:@{DIGEST})?")

hosts = st.one_of(
    st.from_regex(re.compile(rf"{LABEL}(?:\.{LABEL}){{0,3}}", re.ASCII), fullmatch=True),
    st.from_regex(re.compile(r"\[[a-f0-9:]{1,12}\]"), fullmatch=True),
    st.just("localhost"),
)
ports = st.one_of(st.just(""), st.integers(0, 65535).map(lambda p: f":{p}"))
paths = st.from_regex(re.compile(f"{COMPONENT}(?:/{COMPONENT}){{0,3}}", re.ASCII), fullmatch=True)
tags = st.one_of(st.none(), st.from_regex(re.compile(TAG, re.ASCII), fullmatch=True))
digests = st.one_of(
    st.none(),
    st.binary(min_size=1, max_size=64).map(ocistore.digest_bytes),
    st.binary(min_size=1, max_size=64).map(lambda b: ocistore.digest_bytes(b, "sha512")),
)


@st.composite
def reference_texts(draw: st.DrawFn) -> str:
    """Strings built from the grammar's parts, with and without a registry."""
    text = draw(paths)
    if draw(st.booleans()):
        text = f"{draw(hosts)}{draw(ports)}/{text}"
    tag, digest = draw(tags), draw(digests)
    return text + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@settings(max_examples=300, deadline=None)
@given(reference_texts())
def test_grammar_strings_round_trip(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError:
        # The only grammar-conforming strings refused: over-long paths, and the ambiguities
        # the normalisation creates (a first component taken for a host that is not one).
        return
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(ref.familiar) == ref
    assert GRAMMAR.fullmatch(str(ref))
    assert str(ref).endswith(text.split("/")[-1])


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=80),
        st.text(alphabet="abcAB09._-:/@[]%", max_size=40),
        reference_texts().map(lambda s: s[: len(s) // 2]),
    )
)
def test_every_accepted_string_matches_the_grammar(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as err:
        assert str(err)  # always says why
        return
    assert GRAMMAR.fullmatch(text), text
    assert GRAMMAR.fullmatch(str(ref))
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(ref.familiar) == ref


def test_grammar_property_reaches_valid_and_invalid_examples() -> None:
    # Guard against a strategy that only ever produces one kind of string.
    assert GRAMMAR.fullmatch("localhost:5000/a/b:t")
    assert not GRAMMAR.fullmatch("localhost:5000/A")
