"""Platforms (``os/arch[/variant]``) and how containerd picks one from a multi-arch index.

Follows ``containerd/platforms``: ``Normalize`` (``aarch64`` is ``arm64``, ``x86_64`` is
``amd64``, ``arm`` defaults to ``v7``, ...), the ``Parse`` specifier syntax, and ``Only``: a host
also runs images built for older variants of its architecture (``arm64`` runs ``arm/v5..v8``,
``amd64/v3`` runs ``v2``, ``v1`` and ``386``), preferring the closest.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import unquote

from ocistore._lazy import pattern
from ocistore._valueclass import field, replace, valueclass
from ocistore.errors import InvalidPlatformError

__all__ = ["Platform", "PlatformMatcher", "only", "only_strict"]

T = TypeVar("T")

# go/build's syslist (containerd database.go): what a single-word specifier may name.
KNOWN_OS: Final = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "windows",
        "zos",
    }
)
KNOWN_ARCH: Final = frozenset(
    {
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    }
)

# Compiled on first use (``re`` caches them): a pull that parses no platform string skips them.
_SPECIFIER_COMPONENT: Final = r"[A-Za-z0-9_.-]+"
_OS_COMPONENT: Final = r"([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?"
_PERCENT_ESCAPE: Final = r"%(?![0-9A-Fa-f]{2})"

# arm64 variants containerd knows, with the (major, minor) levels each one can run, newest first
# (compare.go arm64variantToVersion): v9.x runs v9.0..v9.x and v8.0..v8.(x+5, at most 9).
_ARM64_LEVELS: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    **{("v8" if minor == 0 else f"v8.{minor}"): ((8, minor),) for minor in range(10)},
    **{
        ("v9" if minor == 0 else f"v9.{minor}"): ((9, minor), (8, min(minor + 5, 9)))
        for minor in range(8)
    },
}


@valueclass(slots=True)
class Platform:
    """An OCI platform. Values are kept as given; :meth:`parse` and :meth:`normalized` normalise.

    ``variant`` and ``os_version`` are ``""`` when absent, as in the OCI JSON where they are
    omitted; ``os_features`` is a tuple.
    """

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, specifier: str) -> Platform:
        """Parses ``os``, ``arch`` or ``os[(version+feature...)]/arch[/variant]``, normalised.

        Follows containerd's ``Parse`` (a lone OS gets the host's architecture, a lone
        architecture the host's OS) and then ``Normalize``, so equal platforms compare equal:
        ``linux/arm64/v8 == linux/aarch64`` and ``linux/arm == linux/arm/v7``.
        """
        if not isinstance(specifier, str):
            raise TypeError(f"a platform must be a str, not {type(specifier).__name__}")
        if "*" in specifier:
            raise InvalidPlatformError(f"{specifier!r}: wildcards are not supported")
        parts = specifier.split("/", 3)
        if len(parts) > 3:
            raise InvalidPlatformError(
                f"{specifier!r}: a platform is os/arch[/variant], not more components"
            )
        os_match = pattern(_OS_COMPONENT, re.ASCII).fullmatch(parts[0])
        if os_match is None:
            raise InvalidPlatformError(
                f"{parts[0]!r} is not a valid OS component of {specifier!r} "
                "(letters, digits, '_' and '-', optionally followed by (version+feature...))"
            )
        for part in parts[1:]:
            if not pattern(_SPECIFIER_COMPONENT, re.ASCII).fullmatch(part):
                raise InvalidPlatformError(
                    f"{part!r} is not a valid component of {specifier!r} "
                    "(letters, digits, '_', '.' and '-')"
                )
        os_name = _normalize_os(os_match.group(1))
        os_version = _decode_os_option(specifier, os_match.group(2) or "")
        features_text = os_match.group(3) or ""
        os_features = (
            tuple(_decode_os_option(specifier, feature) for feature in features_text[1:].split("+"))
            if features_text
            else ()
        )

        if len(parts) == 1:
            if os_name in KNOWN_OS:
                host = cls.host()
                return cls(
                    os_name, host.architecture, host.variant, os_version, os_features
                ).normalized()
            architecture, variant = _normalize_arch(parts[0], "")
            if architecture not in KNOWN_ARCH:
                raise InvalidPlatformError(
                    f"{specifier!r}: unknown operating system or architecture"
                )
            return cls(cls.host().os, architecture, variant).normalized()
        architecture, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
        return cls(os_name, architecture, variant, os_version, os_features).normalized()

    @classmethod
    def host(cls) -> Platform:
        """The platform of this machine (the arm variant read from /proc/cpuinfo)."""
        return _host_platform()

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Platform:
        """Reads an OCI ``platform`` object; raises InvalidPlatformError on wrong types."""

        def text(key: str, required: bool) -> str:
            value = data.get(key)
            if value is None and not required:
                return ""
            if not isinstance(value, str) or (required and not value):
                raise InvalidPlatformError(f"platform {key!r} must be a non-empty string")
            return value

        features = data.get("os.features", [])
        if features is None:
            features = []
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise InvalidPlatformError("platform 'os.features' must be a list of strings")
        return cls(
            os=text("os", True),
            architecture=text("architecture", True),
            variant=text("variant", False),
            os_version=text("os.version", False),
            os_features=tuple(features),
        )

    def to_dict(self) -> dict[str, object]:
        """The OCI JSON object, leaving out empty fields."""
        data: dict[str, object] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            data["os.version"] = self.os_version
        if self.os_features:
            data["os.features"] = list(self.os_features)
        if self.variant:
            data["variant"] = self.variant
        return data

    def normalized(self) -> Platform:
        """containerd's ``Normalize``: canonical OS, architecture, variant and sorted features."""
        architecture, variant = _normalize_arch(self.architecture, self.variant)
        return Platform(
            os=_normalize_os(self.os),
            architecture=architecture,
            variant=variant,
            os_version=self.os_version,
            os_features=tuple(sorted(set(self.os_features))),
        )

    def __str__(self) -> str:
        if not self.os:
            return "unknown"
        os_part = self.os
        options = _encode_os_option(self.os_version) + "".join(
            "+" + _encode_os_option(feature) for feature in sorted(self.os_features) if feature
        )
        if options:
            os_part = f"{os_part}({options})"
        return "/".join(part for part in (os_part, self.architecture, self.variant) if part)


class PlatformMatcher:
    """Matches and ranks platforms like containerd's ``Only``/``OnlyStrict`` comparers."""

    def __init__(self, wanted: Platform, *, strict: bool = False) -> None:
        self.wanted = wanted.normalized()
        vector = [self.wanted] if strict else _platform_vector(self.wanted)
        # Each entry is normalised the way containerd's NewMatcher normalises it.
        self.vector: tuple[Platform, ...] = tuple(p.normalized() for p in vector)

    def rank(self, candidate: Platform) -> int | None:
        """Position of the first compatible vector entry (0 is best), or None if incompatible."""
        normalized = candidate.normalized()
        for position, entry in enumerate(self.vector):
            if _entry_matches(entry, normalized):
                return position
        return None

    def matches(self, candidate: Platform) -> bool:
        """Whether an image built for ``candidate`` runs on the wanted platform."""
        return self.rank(candidate) is not None

    def ordered(self, items: Iterable[T], key: Callable[[T], Platform | None]) -> list[T]:
        """The compatible items, best first; ties keep their order (the index's order)."""
        ranked: list[tuple[int, int, int, T]] = []
        for position, item in enumerate(items):
            candidate = key(item)
            if candidate is None:
                continue
            rank = self.rank(candidate)
            if rank is not None:
                # Among equal matches, the one declaring more OS features is more specific.
                ranked.append((rank, -len(set(candidate.os_features)), position, item))
        ranked.sort(key=lambda entry: entry[:3])
        return [entry[3] for entry in ranked]

    def best(self, items: Sequence[T], key: Callable[[T], Platform | None]) -> T | None:
        """The best compatible item, or None."""
        ordered = self.ordered(items, key)
        return ordered[0] if ordered else None

    def __repr__(self) -> str:
        return f"PlatformMatcher({', '.join(str(p) for p in self.vector)})"


def only(wanted: Platform | str) -> PlatformMatcher:
    """containerd's ``Only``: the wanted platform and everything it can run, closest first."""
    return PlatformMatcher(_as_platform(wanted))


def only_strict(wanted: Platform | str) -> PlatformMatcher:
    """containerd's ``OnlyStrict``: exactly the (normalised) wanted platform."""
    return PlatformMatcher(_as_platform(wanted), strict=True)


# --- normalisation ------------------------------------------------------------------------------


def _as_platform(wanted: Platform | str) -> Platform:
    return Platform.parse(wanted) if isinstance(wanted, str) else wanted


def _normalize_os(os_name: str) -> str:
    if os_name == "":
        return _host_os()
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def _normalize_arch(architecture: str, variant: str) -> tuple[str, str]:
    architecture, variant = architecture.lower(), variant.lower()
    if architecture == "i386":
        return "386", ""
    if architecture in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if architecture in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if architecture == "armhf":
        return "arm", "v7"
    if architecture == "armel":
        return "arm", "v6"
    if architecture == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return architecture, variant


def _decode_os_option(specifier: str, value: str) -> str:
    if "%" not in value:
        return value
    if pattern(_PERCENT_ESCAPE).search(value):
        raise InvalidPlatformError(f"{specifier!r}: invalid %-escape in {value!r}")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidPlatformError(f"{specifier!r}: {value!r} does not decode as UTF-8") from None


def _encode_os_option(value: str) -> str:
    for raw, encoded in (("%", "%25"), ("+", "%2B"), ("(", "%28"), (")", "%29"), ("/", "%2F")):
        value = value.replace(raw, encoded)
    return value


# --- matching ---------------------------------------------------------------------------------


def _platform_vector(wanted: Platform) -> list[Platform]:
    """containerd's ``platformVector``: what ``wanted`` runs, most preferred first."""
    vector = [wanted]
    arch, variant = wanted.architecture, wanted.variant
    if arch == "amd64":
        level = _variant_number(variant)
        if level is not None and level > 1:
            vector += [replace(wanted, variant=f"v{n}") for n in range(level - 1, 0, -1)]
        vector.append(replace(wanted, architecture="386", variant=""))
    elif arch == "arm":
        level = _variant_number(variant)
        if level is not None and level > 5:
            vector += [replace(wanted, variant=f"v{n}") for n in range(level - 1, 4, -1)]
    elif arch == "arm64":
        levels = _ARM64_LEVELS.get(variant or "v8")
        if levels is None:
            return vector  # a variant containerd does not know: only itself
        for major, top_minor in levels:
            for minor in range(top_minor, -1, -1):
                name = f"v{major}" if minor == 0 else f"v{major}.{minor}"
                if name != (variant or "v8"):
                    vector.append(replace(wanted, variant=name))
        vector += _platform_vector(replace(wanted, architecture="arm", variant="v8"))
    return vector


def _variant_number(variant: str) -> int | None:
    digits = variant.removeprefix("v")
    return int(digits) if digits.isascii() and digits.isdigit() else None


def _entry_matches(entry: Platform, candidate: Platform) -> bool:
    if (entry.os, entry.architecture, entry.variant) != (
        candidate.os,
        candidate.architecture,
        candidate.variant,
    ):
        return False
    if entry.os == "windows" and not _windows_versions_match(
        entry.os_version, candidate.os_version
    ):
        return False
    # The image may only require OS features the wanted platform has.
    return set(candidate.os_features) <= set(entry.os_features)


def _windows_versions_match(wanted: str, candidate: str) -> bool:
    # Windows containers need the host's build (major.minor.build); an image that names no
    # version, or a host that names none, is accepted (containerd's windowsVersionMatcher).
    if not wanted or not candidate:
        return True
    return wanted.split(".")[:3] == candidate.split(".")[:3]


# --- the host ---------------------------------------------------------------------------------

_HOST_OS: Final = {"win32": "windows", "cygwin": "windows"}
_UNAME_ARCH: Final = {
    "armv5l": ("arm", "v5"),
    "armv5tel": ("arm", "v5"),
    "armv6l": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv8l": ("arm", "v8"),
    "i486": ("386", ""),
    "i586": ("386", ""),
    "i686": ("386", ""),
}


def _host_os() -> str:
    name = sys.platform
    if name.startswith("linux"):
        return "linux"
    if name.startswith("freebsd"):
        return "freebsd"
    return _HOST_OS.get(name, name)


@functools.cache
def _host_platform() -> Platform:
    machine = os.uname().machine.lower()  # platform.machine() on POSIX, without its import
    architecture, variant = _UNAME_ARCH.get(machine, (machine, ""))
    architecture, variant = _normalize_arch(architecture, variant)
    if architecture in ("arm", "arm64"):
        variant = _cpuinfo_variant(architecture) or variant
    return Platform(_host_os(), architecture, variant).normalized()


def _cpuinfo_variant(architecture: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """containerd's ``cpuVariant`` on Linux: the ``CPU architecture`` line of /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return ""
    match = re.search(r"^CPU architecture\s*:\s*(\S+)", text, re.MULTILINE)
    if match is None:
        return ""
    value = match.group(1).lower()
    if architecture == "arm64":
        return "v8" if value in ("8", "aarch64") else ("v" + value if value.isdigit() else "")
    if value == "7" and re.search(r"^model name\s*:.*ARMv6", text, re.MULTILINE):
        return "v6"  # some ARMv6 boards report architecture 7
    return "v" + value if value.isdigit() else ""
