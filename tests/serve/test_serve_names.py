"""Mirror request paths and ``ns`` are parsed strictly (property tests on hostile text)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocistore.errors import OciStoreError
from ocistore.reference import Reference
from ocistore.serve import parse_mirror_path, repository_name
from ocistore.serve.names import MirrorRequest

COMPONENT = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", fullmatch=True)
NAMES = st.lists(COMPONENT, min_size=1, max_size=4).map("/".join)
HOSTILE = st.text(alphabet=st.sampled_from("aZ09./:%_-@\\\x00 ~"), max_size=40)


@pytest.mark.parametrize(
    ("name", "ns", "expected"),
    [
        ("library/nginx", "docker.io", "docker.io/library/nginx"),
        ("nginx", "docker.io", "docker.io/library/nginx"),
        ("nginx", None, "docker.io/library/nginx"),
        ("team/app", "127.0.0.1:5000", "127.0.0.1:5000/team/app"),
        ("team/app", "registry.example.com", "registry.example.com/team/app"),
        ("a/b/c", "[::1]:5000", "[::1]:5000/a/b/c"),
    ],
)
def test_repository_names(name: str, ns: str | None, expected: str) -> None:
    assert repository_name(name, ns) == expected


@pytest.mark.parametrize(
    ("name", "ns"),
    [
        ("../etc", "docker.io"),
        ("team/../app", "docker.io"),
        ("Team/app", "docker.io"),
        ("team/app", "../../etc"),
        ("team/app", "evil.com/x"),
        ("team/app", ""),
        ("/team/app", "docker.io"),
        ("team//app", "docker.io"),
        ("team/app/", "docker.io"),
        ("team/app", "index.docker.io"),
    ],
)
def test_bad_names_and_namespaces_are_value_errors(name: str, ns: str) -> None:
    with pytest.raises(ValueError) as raised:
        repository_name(name, ns)
    assert isinstance(raised.value, OciStoreError)


@given(name=HOSTILE, ns=st.one_of(st.none(), HOSTILE))
def test_any_accepted_name_is_a_clean_repository(name: str, ns: str | None) -> None:
    try:
        repository = repository_name(name, ns)
    except ValueError:
        return
    parsed = Reference.parse(repository)
    assert parsed.name == repository
    assert repository.startswith(f"{ns or 'docker.io'}/")
    assert ".." not in repository.split("/") and "\x00" not in repository


@given(name=NAMES, kind=st.sampled_from(["manifests", "blobs"]), ref=COMPONENT)
def test_mirror_paths_round_trip(name: str, kind: str, ref: str) -> None:
    assert parse_mirror_path(f"/v2/{name}/{kind}/{ref}") == MirrorRequest(kind, name, ref)


@given(path=st.text(max_size=80))
def test_any_path_parses_to_nothing_or_a_well_formed_request(path: str) -> None:
    wanted = parse_mirror_path(path)
    if wanted is not None:
        assert wanted.kind in ("manifests", "blobs")
        assert wanted.name and wanted.reference and "/" not in wanted.reference
        assert path == f"/v2/{wanted.name}/{wanted.kind}/{wanted.reference}"


@pytest.mark.parametrize(
    "path", ["/v2/", "/v2/_catalog", "/v2/x/tags/list", "/v2/x/blobs/uploads/", "/v3/x/blobs/y"]
)
def test_other_paths_are_not_pull_requests(path: str) -> None:
    assert parse_mirror_path(path) is None
