"""kubelet's credential-key matching: Kubernetes' own test tables, the docs, and a reference model.

The tables below are transcribed from kubernetes/kubernetes
``pkg/credentialprovider/keyring_test.go`` (TestURLsMatch, TestDockerKeyringForGlob,
TestKeyringMiss, TestKeyringMissWithDockerHubCredentials, TestKeyringHitWith*DockerHub,
TestIsDefaultRegistryMatch, TestDockerKeyringLookup, TestIssue3797).
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocistore.credentials import (
    CredentialMatcher,
    DockerConfigEntry,
    Keyring,
    is_default_registry_match,
    normalize_config_key,
    url_match_problem,
    url_matches,
)

# TestURLsMatch: (glob, target, expected)
URLS_MATCH = [
    ("*.kubernetes.io", "prefix.kubernetes.io", True),
    ("prefix.*.io", "prefix.kubernetes.io", True),
    ("prefix.kubernetes.*", "prefix.kubernetes.io", True),
    ("*-good.kubernetes.io", "prefix-good.kubernetes.io", True),
    ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", True),
    ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", True),
    ("*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", True),
    ("prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", True),
    ("*.kubernetes.io", "kubernetes.io", False),
    ("*.*.kubernetes.io", "prefix.kubernetes.io", False),
    ("*.*.kubernetes.io", "kubernetes.io", False),
    ("*kubernetes.io", "a.kubernetes.io", False),
    ("*kubernetes.io", "kubernetes.io", True),
    ("*.*.*.kubernetes.io", "a.b.c.kubernetes.io", True),
    ("kubernetes.io", "kubernetes.com", False),
    ("k*.io", "quay.io", False),
    ("*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", False),
    ("prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", False),
]

# TestDockerKeyringForGlob: a config key and a target; Lookup(target + "/foo/bar") must hit.
KEYRING_FOR_GLOB = [
    ("https://hello.kubernetes.io", "hello.kubernetes.io"),
    ("https://*.docker.io", "prefix.docker.io"),
    ("https://prefix.*.io", "prefix.docker.io"),
    ("https://prefix.docker.*", "prefix.docker.io"),
    ("https://*.docker.io/path", "prefix.docker.io/path"),
    ("https://prefix.*.io/path", "prefix.docker.io/path/subpath"),
    ("https://prefix.docker.*/path", "prefix.docker.io/path"),
    ("https://*.docker.io:8888", "prefix.docker.io:8888"),
    ("https://prefix.*.io:8888", "prefix.docker.io:8888"),
    ("https://prefix.docker.*:8888", "prefix.docker.io:8888"),
    ("https://*.docker.io/path:1111", "prefix.docker.io/path:1111"),
    ("https://*.docker.io/v1/", "prefix.docker.io/path:1111"),
    ("https://*.docker.io/v2/", "prefix.docker.io/path:1111"),
    ("https://prefix.docker.*/path:1111", "prefix.docker.io/path:1111"),
    ("prefix.docker.io:1111", "prefix.docker.io:1111/path"),
    ("*.docker.io:1111", "prefix.docker.io:1111/path"),
]

# TestKeyringMiss: a config key and a lookup; Lookup(lookup + "/foo/bar") must miss.
KEYRING_MISS = [
    ("https://hello.kubernetes.io", "world.mesos.org/foo/bar"),
    ("https://*.docker.com", "prefix.docker.io"),
    ("https://suffix.*.io", "prefix.docker.io"),
    ("https://prefix.docker.c*", "prefix.docker.io"),
    ("https://prefix.*.io/path:1111", "prefix.docker.io/path/subpath:1111"),
    ("suffix.*.io", "prefix.docker.io"),
]

# TestIsDefaultRegistryMatch
DEFAULT_REGISTRY = [
    ("foo/bar", True),
    ("docker.io/foo/bar", True),
    ("index.docker.io/foo/bar", True),
    ("foo", True),
    ("", False),
    ("registry.tld/foo/bar", False),
    ("registry:5000/foo/bar", False),
    ("myhostdocker.io/foo/bar", False),
]

SAMPLE = DockerConfigEntry(username="foo", password="bar", email="foo@bar.baz")


@pytest.mark.parametrize(("glob", "target", "expected"), URLS_MATCH)
def test_kubernetes_urls_match_table(glob: str, target: str, expected: bool) -> None:
    assert url_matches(glob, target) is expected


@pytest.mark.parametrize(("key", "target"), KEYRING_FOR_GLOB)
def test_kubernetes_keyring_for_glob(key: str, target: str) -> None:
    found = Keyring.from_entries({key: SAMPLE}).lookup(target + "/foo/bar")
    assert found, f"{key} should match {target}"
    assert (found[0].username, found[0].password, found[0].email) == ("foo", "bar", "foo@bar.baz")


@pytest.mark.parametrize(("key", "lookup"), KEYRING_MISS)
def test_kubernetes_keyring_miss(key: str, lookup: str) -> None:
    assert Keyring.from_entries({key: SAMPLE}).lookup(lookup + "/foo/bar") == []


def test_kubernetes_docker_hub_credentials() -> None:
    keyring = Keyring.from_entries({"https://index.docker.io/v1/": SAMPLE})
    # TestKeyringMissWithDockerHubCredentials
    assert keyring.lookup("world.mesos.org/foo/bar") == []
    # TestKeyringHitWithUnqualifiedDockerHub / ...UnqualifiedLibraryDockerHub
    for image in ("google/docker-registry", "jenkins"):
        found = keyring.lookup(image)
        assert len(found) == 1 and found[0].username == "foo"
    # TestKeyringHitWithQualifiedDockerHub (url + "/google/docker-registry")
    found = keyring.lookup("index.docker.io/v1//google/docker-registry")
    assert 1 <= len(found) <= 2 and found[0].password == "bar"
    # What kubelet passes today: the normalized name.
    assert [c.username for c in keyring.lookup("docker.io/library/nginx")] == ["foo"]
    assert any("Docker Hub fallback" in note for note in keyring.which("nginx").notes)


@pytest.mark.parametrize(("image", "expected"), DEFAULT_REGISTRY)
def test_kubernetes_is_default_registry_match(image: str, expected: bool) -> None:
    assert is_default_registry_match(image) is expected


def test_kubernetes_docker_keyring_lookup_order() -> None:
    # TestDockerKeyringLookup: grace under bar.example.com/pong, ada under bar.example.com.
    keyring = Keyring.from_entries(
        {
            "bar.example.com/pong": DockerConfigEntry("grace", "squash", "grace@example.com"),
            "bar.example.com": DockerConfigEntry("ada", "smash", "ada@example.com"),
        }
    )
    cases = {
        "bar.example.com": ["ada"],
        "bar.example.com/pong": ["grace", "ada"],
        "bar.example.com/ping": ["ada"],
        "bar.example.com/pongz": ["grace", "ada"],
        "bar.example.com/pong/pang": ["grace", "ada"],
        "example.com": [],
        "foo.example.com": [],
    }
    for image, expected in cases.items():
        assert [c.username for c in keyring.lookup(image)] == expected, image


def test_kubernetes_issue_3797_scheme_and_v1_path() -> None:
    keyring = Keyring.from_entries({"https://quay.io/v1/": DockerConfigEntry("rex", "tiny arms")})
    for image in ("quay.io", "quay.io/foo", "quay.io/foo/bar"):
        assert [c.username for c in keyring.lookup(image)] == ["rex"]
    assert keyring.lookup("quay.io")[0].key == "quay.io"


# The Kubernetes "Images" page ("Interpretation of config.json"). Its examples agree with
# kubelet except where older translations claim `*my-registry.io/images` matches sub-domains:
# kubelet requires equal label counts, so ocistore (following kubelet) says no.
IMAGES_PAGE = [
    ("*.kubernetes.io", "abc.kubernetes.io", True),
    ("*.kubernetes.io", "kubernetes.io", False),
    ("*.*.kubernetes.io", "abc.kubernetes.io", False),
    ("*.*.kubernetes.io", "abc.def.kubernetes.io", True),
    ("prefix.*.io", "prefix.kubernetes.io", True),
    ("*-good.kubernetes.io", "prefix-good.kubernetes.io", True),
    ("my-registry.io/images", "my-registry.io/images", True),
    ("my-registry.io/images", "my-registry.io/images/my-image", True),
    ("my-registry.io/images", "my-registry.io/images/another-image", True),
    ("*.my-registry.io/images", "sub.my-registry.io/images/my-image", True),
    ("*.my-registry.io/images", "a.sub.my-registry.io/images/my-image", False),
    # The documented difference: the page lists these as matches, kubelet does not.
    ("*my-registry.io/images", "sub.my-registry.io/images/my-image", False),
    ("*my-registry.io/images", "a.sub.my-registry.io/images/my-image", False),
    ("*my-registry.io/images", "my-registry.io/images/my-image", True),
]


@pytest.mark.parametrize(("key", "image", "expected"), IMAGES_PAGE)
def test_images_page_examples_follow_kubelet(key: str, image: str, expected: bool) -> None:
    assert url_matches(key, image) is expected


def test_which_explains_the_images_page_difference() -> None:
    keyring = Keyring.from_entries({"*my-registry.io/images": SAMPLE})
    report = keyring.which("a.sub.my-registry.io/images/my-image:1.0")
    assert report.credentials == ()
    assert any("same number of host labels" in note for note in report.notes)
    assert "anonymous" in str(report)


# Go's URL parser decides what a key can express; kubelet inherits every one of these.
GO_URL_FACTS = [
    ("ex?mple.com", "example.com", False),  # `?` starts the query
    ("prefix.[a-z].io", "prefix.b.io", False),  # `[` inside a host is rejected (current Go)
    ("a\\b.io", "a\\b.io", False),  # `\` is not a host character
    ("[::1]:5000", "[::1]:5000/foo", True),  # IPv6 with port: brackets stripped, compared
    ("[::1]:5000", "[::2]:5000/foo", False),
    ("registry.io:5000", "registry.io/foo", False),  # ports must be equal
    ("registry.io", "registry.io:443/foo", False),
    ("Registry.io", "registry.io", False),  # case-sensitive
    ("user:pw@registry.io", "registry.io/x", True),  # userinfo is dropped
    ("registry.io/a%2Fb", "registry.io/a/b/c", True),  # the path is percent-decoded
    ("registry.io/a%zz", "registry.io/a%zz", False),  # a bad escape fails parsing
]


@pytest.mark.parametrize(("key", "image", "expected"), GO_URL_FACTS)
def test_go_url_parsing_is_reproduced(key: str, image: str, expected: bool) -> None:
    assert url_matches(key, image) is expected


def test_malformed_patterns_never_match_and_say_why() -> None:
    assert url_match_problem("*.example.com") is None
    assert url_match_problem("prefix.[a-z].io") == "invalid IP-literal"
    assert url_match_problem("a\\b.io") == 'invalid character "\\\\" in host name'
    assert url_match_problem("registry.io:port") == 'invalid port ":port" after host'
    keyring = Keyring.from_entries({"a\\b.io": SAMPLE, "ok.io": SAMPLE})
    report = keyring.which("ok.io/x")
    assert [c.key for c in report.credentials] == ["ok.io"]
    assert any("never used by kubelet" in note and "a\\b.io" in note for note in report.notes)


def test_config_key_normalization() -> None:
    assert normalize_config_key("https://index.docker.io/v1/") == "index.docker.io"
    assert normalize_config_key("http://quay.io/v2/") == "quay.io"
    assert normalize_config_key("quay.io/coreos") == "quay.io/coreos"
    assert normalize_config_key("quay.io:bad") is None


def test_matcher_rejects_bad_indices_and_reports_keys() -> None:
    matcher = CredentialMatcher(["https://quay.io/v1/", "q[.io"], config_keys=True)
    assert matcher.key(0) == "quay.io"
    assert matcher.problem(0) is None
    assert matcher.problem(1) == "invalid IP-literal"
    assert len(matcher) == 2
    with pytest.raises(IndexError):
        matcher.key(2)


# --- a differential test against a small, independent Python model ------------------------------
# The alphabet avoids every character Go's URL parser treats specially, so the model needs no
# URL parsing: split off the path, split host and port, compare like URLsMatch.

LABEL = st.text(alphabet="ab*-", min_size=1, max_size=4)
TARGET_LABEL = st.text(alphabet="ab-", min_size=1, max_size=4)
PORT = st.sampled_from(["", ":5000", ":80"])
PATH = st.text(alphabet="ab/", max_size=5).map(lambda p: "/" + p if p else "")


def _reference_split(text: str) -> tuple[list[str], str, str]:
    hostport, slash, path = text.partition("/")
    host, _, port = hostport.partition(":")
    return host.split("."), port, slash + path


def reference_url_matches(glob: str, target: str) -> bool:
    """URLsMatch for the restricted alphabet: `*` matches any run within one label."""
    glob_labels, glob_port, glob_path = _reference_split(glob)
    labels, port, path = _reference_split(target)
    if glob_port != port or len(glob_labels) != len(labels) or not path.startswith(glob_path):
        return False
    return all(
        re.fullmatch(".*".join(map(re.escape, g.split("*"))), t) is not None
        for g, t in zip(glob_labels, labels, strict=True)
    )


@st.composite
def urls(draw: st.DrawFn, label: st.SearchStrategy[str]) -> str:
    labels = draw(st.lists(label, min_size=1, max_size=3))
    return ".".join(labels) + draw(PORT) + draw(PATH)


@given(urls(LABEL), urls(TARGET_LABEL))
@settings(max_examples=400)
def test_rust_matcher_agrees_with_the_reference(glob: str, target: str) -> None:
    assert url_matches(glob, target) is reference_url_matches(glob, target)


@given(st.lists(urls(LABEL), min_size=1, max_size=25), urls(TARGET_LABEL))
@settings(max_examples=200)
def test_compiled_lookup_agrees_with_reference_order(keys: list[str], target: str) -> None:
    matcher = CredentialMatcher(keys)
    # kubelet: reverse byte order of the keys, equal keys in insertion order.
    expected = sorted(
        (i for i, key in enumerate(keys) if reference_url_matches(key, target)),
        key=lambda i: ((*tuple(-b for b in keys[i].encode()), 1), i),
    )
    assert matcher.lookup(target) == expected
    assert matcher.lookup_many([target] * 20) == [expected] * 20


# --- hostile input: any text, including every character Go's URL parser treats specially -------

WILD = st.text(alphabet="ab.*?[]^\\:%/-5@#é ", max_size=14)


@given(st.lists(WILD, min_size=1, max_size=12), WILD)
@settings(max_examples=300)
def test_index_agrees_with_pairwise_matching_on_any_text(keys: list[str], image: str) -> None:
    matcher = CredentialMatcher(keys)
    hits = matcher.lookup(image)
    assert sorted(hits) == [i for i, key in enumerate(keys) if url_matches(key, image)]
    for first, second in itertools.pairwise(hits):  # reverse key order, then insertion
        a, b = keys[first].encode(), keys[second].encode()
        assert a > b or (a == b and first < second)
    for index, key in enumerate(keys):
        problem = url_match_problem(key)
        assert matcher.problem(index) == problem
        if problem is not None:
            assert index not in hits


@given(st.text(max_size=40), st.text(max_size=40))
def test_matching_never_raises(pattern: str, image: str) -> None:
    assert isinstance(url_matches(pattern, image), bool)
    assert url_match_problem(pattern) is None or isinstance(url_match_problem(pattern), str)
