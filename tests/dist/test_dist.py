"""What scripts/build-dist puts in dist/: the abi3 manylinux wheel and the sdist.

Given ``OCISTORE_DIST`` (the dist/ directory) and ``OCISTORE_DIST_FROM_SDIST`` (the wheel
rebuilt from the sdist alone); scripts/build-dist and CI set both. Standard library, pytest and
packaging only, so the checks run in the build venv too (``--noconftest``).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import os
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from email.message import Message
from pathlib import Path, PurePosixPath

import pytest
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]
WHEEL_TAGS = {"cp311-abi3-manylinux2014_x86_64", "cp311-abi3-manylinux_2_17_x86_64"}
SUPPORTED_PYTHONS = ["3.11", "3.12", "3.13"]
EXTENSION = "ocistore/_core.abi3.so"


def _dist_dir(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        reason = f"{variable} is not set (scripts/build-dist sets it)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must check the built distributions: {reason}")
        pytest.skip(f"NOT RUN: {reason}")
    return Path(value)


def _only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {directory}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return _only(_dist_dir("OCISTORE_DIST"), "ocistore-*.whl")


@pytest.fixture(scope="module")
def sdist() -> Path:
    return _only(_dist_dir("OCISTORE_DIST"), "ocistore-*.tar.gz")


@pytest.fixture(scope="module")
def wheel_from_sdist() -> Path:
    return _only(_dist_dir("OCISTORE_DIST_FROM_SDIST"), "ocistore-*.whl")


def _cargo_version() -> str:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return str(cargo["workspace"]["package"]["version"])


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def _source_package_files() -> set[str]:
    """The checkout's python/ocistore files, as the wheel names them."""
    source = ROOT / "python"
    return {
        path.relative_to(source).as_posix()
        for path in (source / "ocistore").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".so", ".pyc"}
    }


def _metadata(text: str) -> Message:
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        return _metadata(archive.read(f"ocistore-{_cargo_version()}.dist-info/METADATA").decode())


def test_wheel_is_abi3_manylinux2014_x86_64(wheel: Path) -> None:
    name, version, _build, tags = parse_wheel_filename(wheel.name)
    assert (str(name), str(version)) == ("ocistore", _cargo_version())
    assert {str(tag) for tag in tags} == WHEEL_TAGS
    with zipfile.ZipFile(wheel) as archive:
        wheel_file = _metadata(archive.read(f"ocistore-{version}.dist-info/WHEEL").decode())
    assert set(wheel_file.get_all("Tag") or []) == WHEEL_TAGS
    assert wheel_file["Root-Is-Purelib"] == "false"


def test_wheel_holds_the_package_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    dist_info = f"ocistore-{_cargo_version()}.dist-info/"
    package = {name for name in names if not name.startswith(dist_info)}
    assert package == _source_package_files() | {EXTENSION}
    assert {"ocistore/py.typed", "ocistore/_core.pyi"} <= package
    metadata_files = {name.removeprefix(dist_info) for name in names if name.startswith(dist_info)}
    assert metadata_files == {
        "METADATA",
        "WHEEL",
        "RECORD",
        "entry_points.txt",
        "licenses/LICENSE",
    }


def test_wheel_entry_point_and_license(wheel: Path) -> None:
    dist_info = f"ocistore-{_cargo_version()}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        license_text = archive.read(f"{dist_info}/licenses/LICENSE")
    assert entry_points.split() == ["[console_scripts]", "ocistore=ocistore.cli:main"]
    assert license_text == (ROOT / "LICENSE").read_bytes()
    assert b"Apache License" in license_text and b"Version 2.0" in license_text


def test_wheel_metadata(wheel: Path) -> None:
    metadata = _wheel_metadata(wheel)
    project = _pyproject()
    assert metadata["Name"] == "ocistore"
    assert metadata["Version"] == _cargo_version()
    assert metadata["Requires-Python"] == project["requires-python"] == ">=3.11"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    classifiers = metadata.get_all("Classifier") or []
    assert classifiers == project["classifiers"]
    for version in SUPPORTED_PYTHONS:
        assert f"Programming Language :: Python :: {version}" in classifiers
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Source", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    runtime = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert runtime == project["dependencies"]
    assert metadata["Description-Content-Type"].startswith("text/markdown")
    assert metadata.get_payload().startswith("# ocistore")


def test_sdist_holds_the_sources_and_no_build_output(sdist: Path) -> None:
    top = f"ocistore-{_cargo_version()}"
    with tarfile.open(sdist) as archive:
        names = {PurePosixPath(member.name) for member in archive.getmembers() if member.isfile()}
        license_text = archive.extractfile(f"{top}/LICENSE").read()  # type: ignore[union-attr]
    assert all(name.parts[0] == top for name in names)
    inside = {name.relative_to(top).as_posix() for name in names}
    top_files = {"PKG-INFO", "pyproject.toml", "Cargo.toml", "Cargo.lock", "LICENSE", "README.md"}
    assert top_files <= inside
    assert {f"python/{name}" for name in _source_package_files()} <= inside
    assert {PurePosixPath(name).parts[0] for name in inside} <= top_files | {"python", "rust"}
    assert not {name for name in inside if name.startswith(("rust/fuzz/", "target/"))}
    assert license_text == (ROOT / "LICENSE").read_bytes()


def test_sdist_rebuilds_the_same_wheel(wheel: Path, wheel_from_sdist: Path) -> None:
    """Byte for byte: maturin writes fixed zip timestamps and rustc records relative paths."""
    assert wheel_from_sdist.name == wheel.name
    with zipfile.ZipFile(wheel) as built, zipfile.ZipFile(wheel_from_sdist) as rebuilt:
        assert built.namelist() == rebuilt.namelist()
        for name in built.namelist():
            assert built.read(name) == rebuilt.read(name), f"{name} differs"
    assert wheel.read_bytes() == wheel_from_sdist.read_bytes()


def _pip_install_target(python: str, wheel: Path, target: Path) -> subprocess.CompletedProcess[str]:
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    return subprocess.run(
        [*pip, "--target", target, wheel],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


def _interpreter(version: str) -> str:
    """``pythonX.Y`` from PATH, or from pyenv's versions (whose shims serve only the global one)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{version}"), *pyenv.glob(f"{version}.*/bin/python{version}")]
    for python in filter(None, candidates):
        if subprocess.run([python, "-c", ""], capture_output=True).returncode == 0:
            return str(python)
    if os.environ.get("CI"):
        pytest.fail(f"python{version} is missing in CI")
    pytest.skip(f"NOT RUN: no python{version} on this machine")


@pytest.mark.parametrize("version", SUPPORTED_PYTHONS)
def test_wheel_imports_on_every_supported_python(version: str, wheel: Path, tmp_path: Path) -> None:
    python = _interpreter(version)
    installed = _pip_install_target(python, wheel, tmp_path / "site")
    assert installed.returncode == 0, installed.stderr
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import ocistore, ocistore._core as core\n"
        "assert core.__file__.startswith(sys.argv[1]), core.__file__\n"
        "print(ocistore.__version__, ocistore.digest_bytes(b'ocistore'))\n"
    )
    run = subprocess.run(
        [python, "-I", "-c", script, str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    expected = "sha256:" + hashlib.sha256(b"ocistore").hexdigest()
    assert run.stdout.split() == [_cargo_version(), expected]


def test_wheel_is_refused_by_python_3_10(wheel: Path, tmp_path: Path) -> None:
    installed = _pip_install_target(_interpreter("3.10"), wheel, tmp_path / "site")
    assert installed.returncode != 0
    assert "is not a supported wheel on this platform" in installed.stderr
    assert not (tmp_path / "site" / "ocistore").exists()
