"""Platforms: containerd's specifier parsing, normalisation and Only/OnlyStrict matching."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ocistore.platform as platform_module
from ocistore import InvalidPlatformError, Platform, only, only_strict

HOST = Platform.host()


@pytest.mark.parametrize(
    ("specifier", "expected", "formatted"),
    [
        ("linux/arm64", Platform("linux", "arm64"), "linux/arm64"),
        ("linux/arm64/v8", Platform("linux", "arm64"), "linux/arm64"),
        ("linux/aarch64", Platform("linux", "arm64"), "linux/arm64"),
        ("linux/arm64/v8.0", Platform("linux", "arm64"), "linux/arm64"),
        ("linux/arm64/9.0", Platform("linux", "arm64", "v9"), "linux/arm64/v9"),
        ("linux/arm64/v8.2", Platform("linux", "arm64", "v8.2"), "linux/arm64/v8.2"),
        ("linux/arm", Platform("linux", "arm", "v7"), "linux/arm/v7"),
        ("linux/arm/7", Platform("linux", "arm", "v7"), "linux/arm/v7"),
        ("linux/armhf", Platform("linux", "arm", "v7"), "linux/arm/v7"),
        ("linux/arm/v6", Platform("linux", "arm", "v6"), "linux/arm/v6"),
        ("linux/armel", Platform("linux", "arm", "v6"), "linux/arm/v6"),
        ("linux/arm/5", Platform("linux", "arm", "v5"), "linux/arm/v5"),
        ("Linux/x86_64", Platform("linux", "amd64"), "linux/amd64"),
        ("linux/x86-64", Platform("linux", "amd64"), "linux/amd64"),
        ("linux/amd64/v1", Platform("linux", "amd64"), "linux/amd64"),
        ("linux/amd64/v3", Platform("linux", "amd64", "v3"), "linux/amd64/v3"),
        ("linux/i386", Platform("linux", "386"), "linux/386"),
        ("linux/s390x", Platform("linux", "s390x"), "linux/s390x"),
        ("linux/ppc64le", Platform("linux", "ppc64le"), "linux/ppc64le"),
        ("macOS/arm64", Platform("darwin", "arm64"), "darwin/arm64"),
        ("Aarch64", Platform(HOST.os, "arm64"), f"{HOST.os}/arm64"),
        ("x86_64", Platform(HOST.os, "amd64"), f"{HOST.os}/amd64"),
        ("armel", Platform(HOST.os, "arm", "v6"), f"{HOST.os}/arm/v6"),
        ("armhf", Platform(HOST.os, "arm", "v7"), f"{HOST.os}/arm/v7"),
        ("i386", Platform(HOST.os, "386"), f"{HOST.os}/386"),
        ("s390x", Platform(HOST.os, "s390x"), f"{HOST.os}/s390x"),
        ("linux", HOST, str(HOST)),
        (
            "windows(10.0.17763)/amd64",
            Platform("windows", "amd64", os_version="10.0.17763"),
            "windows(10.0.17763)/amd64",
        ),
        (
            "windows(10.0.17763+win32k)/amd64",
            Platform("windows", "amd64", os_version="10.0.17763", os_features=("win32k",)),
            "windows(10.0.17763+win32k)/amd64",
        ),
        (
            "linux(+unsorted+erofs)/amd64",
            Platform("linux", "amd64", os_features=("erofs", "unsorted")),
            "linux(+erofs+unsorted)/amd64",
        ),
        (
            "windows(10.0.17763%2Bbuild.42+win32k)/amd64",
            Platform("windows", "amd64", os_version="10.0.17763+build.42", os_features=("win32k",)),
            "windows(10.0.17763%2Bbuild.42+win32k)/amd64",
        ),
        (
            "windows(50%25done)/amd64",
            Platform("windows", "amd64", os_version="50%done"),
            "windows(50%25done)/amd64",
        ),
        ("windows()/amd64", Platform("windows", "amd64"), "windows/amd64"),
    ],
)
def test_parse_normalises(specifier: str, expected: Platform, formatted: str) -> None:
    parsed = Platform.parse(specifier)
    assert parsed == expected
    assert str(parsed) == formatted
    assert Platform.parse(formatted) == parsed


@pytest.mark.parametrize(
    ("specifier", "fragment"),
    [
        ("", "not a valid OS component"),
        ("/linux/arm", "not a valid OS component"),
        ("linux/arm/", "'' is not a valid component"),
        ("linux /arm", "not a valid OS component"),
        ("linux/&arm", "'&arm' is not a valid component"),
        ("linux/arm/foo/bar", "not more components"),
        ("*", "wildcards"),
        ("linux/*", "wildcards"),
        ("notanos", "unknown operating system or architecture"),
        ("linux(%zz)/amd64", "invalid %-escape"),
        ("linux(%ff)/amd64", "does not decode as UTF-8"),
        ("linux(unclosed/amd64", "not a valid OS component"),
    ],
)
def test_parse_rejects(specifier: str, fragment: str) -> None:
    with pytest.raises(InvalidPlatformError, match=fragment.replace("*", r"\*")):
        Platform.parse(specifier)


# containerd compare_test.go TestOnly: (host, images it runs, images it does not run)
ONLY = [
    ("linux/amd64", ["linux/amd64", "linux/386"],
     ["linux/amd64/v2", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"]),
    ("linux/amd64/v2", ["linux/amd64", "linux/amd64/v1", "linux/amd64/v2", "linux/386"],
     ["linux/amd64/v3", "linux/amd64/v4", "linux/arm/v7", "linux/arm64", "windows/amd64"]),
    ("linux/386", ["linux/386"], ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64"]),
    ("windows/amd64", ["windows/amd64", "windows(10.0.17763)/amd64"],
     ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/arm"]),
    ("linux/arm/v8", ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"],
     ["linux/amd64", "linux/arm/v4", "linux/arm64", "windows/amd64", "windows/arm"]),
    ("linux/arm/v7", ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7"],
     ["linux/amd64", "linux/arm/v4", "linux/arm/v8", "linux/arm64", "windows/amd64"]),
    ("linux/arm/v6", ["linux/arm/v5", "linux/arm/v6"],
     ["linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v7", "linux/arm/v8", "linux/arm64"]),
    ("linux/arm/v5", ["linux/arm/v5"],
     ["linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v6", "linux/arm/v7", "linux/arm64"]),
    ("linux/arm/v4", ["linux/arm/v4"],
     ["linux/amd64", "linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm64"]),
    ("linux/arm64/v9",
     ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
      "linux/arm64/v8", "linux/arm64/v8.1", "linux/arm64/v8.2", "linux/arm64/v8.3",
      "linux/arm64/v8.4", "linux/arm64/v8.5", "linux/arm64/v9", "linux/arm64/v9.0"],
     ["linux/amd64", "linux/arm/v4", "windows/amd64", "windows/arm", "linux/arm64/v8.6"]),
    ("linux/arm64/v8.1",
     ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
      "linux/arm64/v8", "linux/arm64/v8.1"],
     ["linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v9", "windows/arm"]),
    ("linux/arm64",
     ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
      "linux/arm64/v8", "linux/aarch64"],
     ["linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v9", "linux/arm64/v8.1"]),
    ("linux/arm64/v9.6",
     ["linux/arm64/v8.9", "linux/arm64/v9.6", "linux/arm64/v9.5", "linux/arm64"],
     ["linux/arm64/v9.7", "linux/arm64/v8.10"]),
    ("linux/arm64/v9.2", ["linux/arm64/v8.7", "linux/arm64/v9.1"], ["linux/arm64/v8.8"]),
]  # fmt: skip

# containerd compare_test.go TestOnlyStrict
ONLY_STRICT = [
    ("linux/amd64", ["linux/amd64"], ["linux/386", "linux/arm/v7", "linux/arm64", "windows/amd64"]),
    ("windows(10.0.17763)/amd64", ["windows/amd64", "windows(10.0.17763)/amd64"],
     ["linux/amd64", "windows/arm", "windows(10.0.20348)/amd64"]),
    ("linux/arm/v8", ["linux/arm/v8"], ["linux/arm", "linux/arm/v7", "linux/arm64"]),
    ("linux/arm/v7", ["linux/arm", "linux/arm/v7"],
     ["linux/arm/v5", "linux/arm/v6", "linux/arm/v8"]),
    ("linux/arm64/v9", ["linux/arm64/v9", "linux/arm64/v9.0"],
     ["linux/arm", "linux/arm/v8", "linux/arm64/v8", "linux/arm64/v8.1"]),
    ("linux/arm64/v8.1", ["linux/arm64/v8.1"], ["linux/arm64/v8", "linux/arm64/v9"]),
    ("linux/arm64", ["linux/arm64", "linux/arm64/v8"], ["linux/arm/v8", "linux/arm64/v9"]),
]  # fmt: skip


@pytest.mark.parametrize(("host", "runs", "does_not_run"), ONLY)
def test_only(host: str, runs: list[str], does_not_run: list[str]) -> None:
    matcher = only(host)
    for image in runs:
        assert matcher.matches(Platform.parse(image)), f"{host} should run {image}"
    for image in does_not_run:
        assert not matcher.matches(Platform.parse(image)), f"{host} should not run {image}"


@pytest.mark.parametrize(("host", "runs", "does_not_run"), ONLY_STRICT)
def test_only_strict(host: str, runs: list[str], does_not_run: list[str]) -> None:
    matcher = only_strict(host)
    for image in runs:
        assert matcher.matches(Platform.parse(image)), f"{host} should run {image}"
    for image in does_not_run:
        assert not matcher.matches(Platform.parse(image)), f"{host} should not run {image}"


def test_matching_normalises_raw_document_values() -> None:
    # Index entries carry whatever the builder wrote; matching normalises them.
    assert only("linux/arm64").matches(Platform("linux", "aarch64", "v8"))
    assert only("linux/amd64").matches(Platform("Linux", "x86_64"))
    assert only("linux/arm/v7").matches(Platform("linux", "armhf"))
    assert not only("linux/amd64").matches(Platform("unknown", "unknown"))


def test_order_prefers_the_closest_variant_then_index_order() -> None:
    images = [
        Platform("linux", "386"),
        Platform("linux", "arm", "v6"),
        Platform("linux", "arm64"),
        Platform("linux", "arm", "v7"),
        Platform("unknown", "unknown"),
        Platform("linux", "arm64", "v8"),
        Platform("linux", "arm64", "v8.2"),
    ]
    arm64 = only("linux/arm64/v8.2").ordered(images, key=lambda p: p)
    assert arm64 == [images[6], images[2], images[5], images[3], images[1]]
    assert only("linux/arm/v7").best(images, key=lambda p: p) == images[3]
    assert only("linux/amd64").best(images, key=lambda p: p) == images[0]
    assert only("linux/s390x").best(images, key=lambda p: p) is None
    amd64_v3 = [Platform("linux", "amd64"), Platform("linux", "amd64", "v2")]
    assert only("linux/amd64/v3").ordered(amd64_v3, key=lambda p: p) == amd64_v3[::-1]


def test_entries_without_platform_are_skipped() -> None:
    items: list[Platform | None] = [None, Platform("linux", "amd64")]
    assert only("linux/amd64").ordered(items, key=lambda p: p) == [items[1]]


def test_os_features_must_be_a_subset_and_more_features_win_ties() -> None:
    host = Platform.parse("windows(10.0.17763+win32k)/amd64")
    plain = Platform("windows", "amd64", os_version="10.0.17763")
    featured = Platform("windows", "amd64", os_version="10.0.17763", os_features=("win32k",))
    needs_more = Platform("windows", "amd64", os_features=("win32k", "gpu"))
    matcher = only(host)
    assert matcher.matches(plain) and matcher.matches(featured)
    assert not matcher.matches(needs_more)
    assert matcher.ordered([plain, featured], key=lambda p: p) == [featured, plain]
    assert not only("windows/amd64").matches(featured)


def test_windows_build_must_match_when_both_name_one() -> None:
    host = only("windows(10.0.17763)/amd64")
    assert host.matches(Platform("windows", "amd64", os_version="10.0.17763.1234"))
    assert not host.matches(Platform("windows", "amd64", os_version="10.0.20348.1"))


def test_dict_round_trip_and_validation() -> None:
    data = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "os.version": "1",
        "os.features": ["a"],
    }
    parsed = Platform.from_dict(data)
    assert parsed == Platform("linux", "arm64", "v8", "1", ("a",))
    assert parsed.to_dict() == data
    assert Platform.from_dict({"os": "linux", "architecture": "amd64"}).to_dict() == {
        "architecture": "amd64",
        "os": "linux",
    }
    for bad in (
        {"os": "linux"},
        {"os": "", "architecture": "amd64"},
        {"os": "linux", "architecture": 5},
        {"os": "linux", "architecture": "amd64", "os.features": "gpu"},
        {"os": "linux", "architecture": "amd64", "variant": ["v8"]},
    ):
        with pytest.raises(InvalidPlatformError):
            Platform.from_dict(bad)


def test_host_is_normalised_and_matches_itself() -> None:
    host = Platform.host()
    assert host == host.normalized()
    assert host.os == "linux"
    assert only(host).matches(host)


@pytest.mark.parametrize(
    ("architecture", "cpuinfo", "expected"),
    [
        ("arm64", "processor\t: 0\nCPU architecture: 8\n", "v8"),
        ("arm", "CPU architecture: 7\nmodel name\t: ARMv7 Processor\n", "v7"),
        ("arm", "model name\t: ARMv6-compatible processor rev 7\nCPU architecture: 7\n", "v6"),
        ("arm", "CPU architecture: 6\n", "v6"),
        ("arm", "nothing here\n", ""),
    ],
)
def test_cpuinfo_variant(architecture: str, cpuinfo: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert platform_module._cpuinfo_variant(architecture, path) == expected


@settings(deadline=None)
@given(st.text(max_size=40))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        parsed = Platform.parse(text)
    except InvalidPlatformError:
        return
    assert Platform.parse(str(parsed)) == parsed
