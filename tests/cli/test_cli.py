"""The real ``ocistore`` command line, run as a subprocess against real registries."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from cli_modules import run_and_list_modules
from node_registries import ManagerRegistries
from regfixtures.registry import registry_requests

import ocistore
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image, build_index

COMMANDS = [
    "pull",
    "ensure",
    "images",
    "inspect",
    "rm",
    "gc",
    "fsck",
    "unpack",
    "export",
    "import",
    "push",
    "copy",
    "resolve",
    "auth which",
    "create-secret docker-registry",
]


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private HOME: the default store and the node's docker config are never the user's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OCISTORE_ROOT", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)


def run(
    *args: str | Path,
    store: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ocistore"]
    if store is not None:
        command += ["--store", str(store)]
    result = subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"ocistore {' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def _push(host: str, tmp_path: Path, name: str, *, arches: tuple[str, ...] = ()) -> str:
    reference = f"{host}/{name}"
    store = Store(tmp_path / f"build-{uuid.uuid4().hex[:6]}")
    if arches:
        images = [
            build_image(
                [{"etc/os-release": f"ID=demo {arch}\n"}, {f"bin/{arch}": arch * 4000}],
                platform=arch,
            )
            for arch in arches
        ]
        build_index(images).write_to_store(store, reference)
    else:
        image = build_image(
            [{"etc/os-release": "ID=demo\n"}, {"app/data.bin": os.urandom(300_000)}]
        )
        image.write_to_store(store, reference)
    ocistore.push(reference, store=store, options=RegistryOptions(plain_http=True))
    return reference


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command: str) -> None:
    result = run(*command.split(), "--help")
    assert "Example" in result.stdout, result.stdout
    assert result.stdout.startswith("Usage: ocistore ")


def test_every_command_is_found_lazily_in_its_module() -> None:
    from ocistore.cli.app import COMMAND_MODULES, cli

    names = set(cli.list_commands(click.Context(cli)))  # imports every command module
    assert names == set(COMMAND_MODULES)


# What a re-pull to a pipe must not import: YAML parsing, rich's consoles, the store's upkeep,
# the credential machinery when the node has no docker config (HOME is private here), image GC,
# hosts.toml parsing without --hosts-dir, the default-store lookup when --store is given, the
# KEP-2535 records without pull secrets, the pods' model without a pod, click for a simple pull.
NOT_FOR_A_QUIET_PULL = (
    "click",
    "ocistore.store.pullcredentials",
    "yaml",
    "rich",
    "ocistore.store.blobgc",
    "ocistore.store.fsck",
    "ocistore.store.layout",
    "ocistore.credentials.keyring",
    "ocistore.credentials.provider",
    "ocistore.credentials.helpers",
    "ocistore.credentials.secrets",
    "subprocess",
    "ocistore.manager.imagegc",
    "ocistore.manager.pods",
    "ocistore.manager.pullrecords",
    "tomllib",
    "platformdirs",
)


@pytest.mark.parametrize("quiet", [True, False], ids=["quiet", "lines-to-a-pipe"])
def test_a_repull_imports_only_what_it_needs(
    manager_registries: ManagerRegistries, tmp_path: Path, quiet: bool
) -> None:
    image = _push(manager_registries.plain.host, tmp_path, "diet/app:1")
    store = tmp_path / "store"
    run("-q", "pull", image, store=store)
    printed, loaded = run_and_list_modules(
        "--store", store, *(["-q"] if quiet else []), "pull", "--policy", "Always", image
    )
    if quiet:
        assert printed[0].startswith("sha256:") and len(printed) == 1
    else:  # progress lines as docker prints them, without rich (stdout is not a terminal)
        assert any(line.endswith(": Already exists") for line in printed), printed
        assert printed[-1].startswith(f'Successfully pulled image "{image}"'), printed
    assert "ocistore.manager" in loaded  # the run really went through the pull
    heavy = [
        m for m in loaded if m.split(".")[0] in NOT_FOR_A_QUIET_PULL or m in NOT_FOR_A_QUIET_PULL
    ]
    assert not heavy, heavy


def test_debug_logs_each_request_and_event(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    """``--debug`` configures logging, so ocistore's lazily loading loggers (ocistore/_log.py)
    reach it: the manager's events and every registry request, the light HEAD's included."""
    image = _push(manager_registries.plain.host, tmp_path, f"cli/debug-{uuid.uuid4().hex[:6]}:1")
    store = tmp_path / "store"
    run("-q", "pull", image, "--plain-http", store=store)
    again = run("--debug", "pull", image, "--policy", "Always", "--plain-http", store=store)
    path = image.split("/", 1)[1].replace(":", "/manifests/")
    host = manager_registries.plain.host
    assert f"DEBUG ocistore.registry: HEAD http://{host}/v2/{path}" in again.stderr.splitlines()
    assert f'INFO ocistore.manager: Pulling: Pulling image "{image}"' in again.stderr
    quiet = run("pull", image, "--policy", "Always", "--plain-http", store=store)
    assert "DEBUG" not in quiet.stderr and "INFO" not in quiet.stderr  # none without --debug


FREEZE_REPORTED = """
import atexit, gc, sys
atexit.register(lambda: print("frozen" if gc.get_freeze_count() else "not frozen"))
from ocistore.cli import main
whole, *args = sys.argv[1:]
sys.argv[1:] = args
main(None if whole == "process" else args)
"""


@pytest.mark.parametrize("path", ["quick", "click"])
def test_the_collector_is_frozen_only_when_main_is_the_process(tmp_path: Path, path: str) -> None:
    """Run as the process, main() freezes the garbage collector on the way out (the final
    collection would only walk what the exit frees); called with argv, it does not."""
    args = ["--store", str(tmp_path / "store"), "pull", "--policy", "Never", "absent/image:1"]
    if path == "click":
        args.insert(-1, "--secret=/nonexistent")  # an option the quick parser leaves to click
    said: dict[str, str] = {}
    for whole in ("process", "argv"):
        done = subprocess.run(
            [sys.executable, "-c", FREEZE_REPORTED, whole, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode in (1, 2), done.stderr  # an absent image, or click's usage error
        said[whole] = done.stdout.splitlines()[-1]
    assert said == {"process": "frozen", "argv": "not frozen"}


def test_a_present_image_if_not_present_loads_no_registry_client(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    """IfNotPresent of a present image asks no registry: none of the client, its auth, its
    sessions or sockets is imported (``ocistore.registry`` loads each name on first use)."""
    image = _push(manager_registries.plain.host, tmp_path, f"cli/present-{uuid.uuid4().hex[:6]}:1")
    store = tmp_path / "store"
    run("-q", "pull", image, store=store)
    [printed], loaded = run_and_list_modules(
        "--store", store, "-q", "pull", "--policy", "IfNotPresent", image
    )
    assert printed.startswith("sha256:")
    assert "ocistore.manager.manager" in loaded  # the run went through the image manager
    client = {
        "ocistore.registry.client",
        "ocistore.registry.auth",
        "ocistore.registry.session",
        "ocistore.registry.connections",
        "ocistore.registry.lighthttp",
        "socket",
    }
    assert not client & loaded, client & loaded


def test_usage_error_is_exit_2() -> None:
    result = run("pull", check=False)
    assert result.returncode == 2 and "Missing argument" in result.stderr
    result = run("pull", "x", "--policy", "always", check=False)
    assert result.returncode == 2


def test_global_options_work_after_the_subcommand(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    """``ocistore pull IMAGE --store DIR --json``, as kubectl, crane and skopeo accept it."""
    store = tmp_path / "store"
    image = _push(manager_registries.plain.host, tmp_path, f"cli/late-{uuid.uuid4().hex[:6]}:1")
    pulled = json.loads(run("pull", image, "--store", store, "--json").stdout)
    assert pulled["pulled"] is True and pulled["digest"].startswith("sha256:")
    after = json.loads(run("images", f"--store={store}", "--json").stdout)
    before = json.loads(run("--json", "images", store=store).stdout)
    assert after == before and [entry["reference"] for entry in after] == [image]
    quiet = run("pull", image, "-q", "--store", store)
    assert quiet.stdout.strip() == pulled["digest"]  # -q: only what scripts need
    # A global option after a nested subcommand, and the store it names is the one used.
    which = json.loads(run("auth", "which", image, "--json").stdout)
    assert which["image"] == image
    assert run("images", "--store", tmp_path / "other", "-q").stdout == ""


def test_the_whole_lifecycle(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    regs = manager_registries
    store = tmp_path / "store"
    image = _push(regs.plain.host, tmp_path, f"cli/app-{uuid.uuid4().hex[:6]}:1.0")

    pulled = run("pull", image, store=store)
    layer_lines = [line for line in pulled.stdout.splitlines() if "Download complete" in line]
    assert len(layer_lines) == 2, pulled.stdout
    assert f'Successfully pulled image "{image}"' in pulled.stdout

    listed = json.loads(run("--json", "images", store=store).stdout)
    assert [entry["reference"] for entry in listed] == [image]
    digest = listed[0]["digest"]

    before = len(registry_requests(regs.plain))
    again = run("pull", image, "--policy", "Always", store=store)
    assert again.stdout.count("Already exists") == 2, again.stdout
    assert [m for m, _ in registry_requests(regs.plain)[before:]] == ["HEAD"]

    present = run("pull", image, store=store)
    assert "already present on machine" in present.stdout

    assert run("-q", "resolve", image).stdout.strip() == digest

    inspected = json.loads(run("--json", "inspect", image, store=store).stdout)
    assert inspected["record"]["digest"] == digest
    assert len(inspected["manifest"]["layers"]) == 2
    human = run("inspect", image, store=store).stdout
    assert human.startswith(f"{image}\n  digest:   {digest}\n"), human
    for layer in inspected["manifest"]["layers"]:
        assert layer["digest"] in human

    rootfs = tmp_path / "rootfs"
    run("unpack", image, rootfs, store=store)
    assert (rootfs / "etc" / "os-release").read_text() == "ID=demo\n"

    layout = tmp_path / "layout"
    run("export", image, "--oci-layout", layout, store=store)
    other = tmp_path / "other-store"
    imported = json.loads(run("--json", "import", layout, store=other).stdout)
    assert [entry["digest"] for entry in imported] == [digest]

    report = json.loads(run("--json", "fsck", store=store).stdout)
    assert report["ok"] is True

    run("rm", image, store=store)
    assert json.loads(run("--json", "images", store=store).stdout) == []
    gc = json.loads(run("--json", "gc", store=store).stdout)
    manifest_blobs = [digest, inspected["manifest"]["config"]["digest"]] + [
        layer["digest"] for layer in inspected["manifest"]["layers"]
    ]
    assert sorted(gc["removed_blobs"]) == sorted(manifest_blobs)


def test_push_and_copy(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    regs = manager_registries
    source = _push(
        regs.plain.host,
        tmp_path,
        f"cli/multi-{uuid.uuid4().hex[:6]}:1",
        arches=(
            "linux/amd64",
            "linux/arm64",
        ),
    )
    destination = f"{regs.plain.host}/cli/copied-{uuid.uuid4().hex[:6]}:1"
    copied = json.loads(run("--json", "copy", source, destination).stdout)
    assert len(copied["manifests"]) == 3  # the index and both platforms
    assert run("-q", "resolve", destination).stdout == run("-q", "resolve", source).stdout

    store = tmp_path / "store"
    run("pull", source, "--platform", "linux/arm64", store=store)
    entry = json.loads(run("--json", "images", store=store).stdout)[0]
    assert entry["platform"] == "linux/arm64"
    missing = run("pull", source, "--platform", "linux/s390x", store=store, check=False)
    assert missing.returncode == 1
    assert "linux/amd64" in missing.stderr and "linux/arm64" in missing.stderr
    assert "Traceback" not in missing.stderr

    pushed_to = f"{regs.plain.host}/cli/pushed-{uuid.uuid4().hex[:6]}:2"
    report = json.loads(run("--json", "push", source, pushed_to, store=store).stdout)
    assert report["digest"] == entry["digest"]


def test_errors_are_one_line_and_name_the_cause(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    regs = manager_registries
    private = _push(regs.plain.host, tmp_path, f"cli/private-{uuid.uuid4().hex[:6]}:1")
    private = private.replace(regs.plain.host, regs.basic.host)
    result = run("pull", private, store=tmp_path / "s", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ErrImagePull: ") and "Traceback" not in result.stderr
    assert any(line.startswith("hint: ") for line in lines)

    never = run("pull", f"{regs.plain.host}/absent:1", "--policy", "Never", check=False)
    assert never.returncode == 1 and "ErrImageNeverPull" in never.stderr

    as_json = run("--json", "pull", "Invalid Name", check=False)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["reason"] == "InvalidImageName"


def _push_private(regs: ManagerRegistries, tmp_path: Path, name: str) -> str:
    """An image pushed through the plain endpoint, named at the basic-auth one."""
    image = _push(regs.plain.host, tmp_path, f"cli/{name}-{uuid.uuid4().hex[:6]}:1")
    return image.replace(regs.plain.host, regs.basic.host)


def _basic_auth_config(regs: ManagerRegistries) -> str:
    """A docker config.json with the basic-auth registry's credentials."""
    entry = {"username": regs.user, "password": regs.password}
    return json.dumps({"auths": {regs.basic.host: entry}})


def test_credentials_from_files(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    regs = manager_registries
    private = _push_private(regs, tmp_path, "secret")

    secret_yaml = run(
        "create-secret",
        "docker-registry",
        "regcred",
        f"--docker-server={regs.basic.host}",
        f"--docker-username={regs.user}",
        f"--docker-password={regs.password}",
        "-n",
        "team",
    ).stdout
    secret = yaml.safe_load(secret_yaml)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"] == {"name": "regcred", "namespace": "team", "creationTimestamp": None}
    assert list(secret) == ["apiVersion", "data", "kind", "metadata", "type"]
    secret_file = tmp_path / "regcred.yaml"
    secret_file.write_text(secret_yaml)

    which = run("auth", "which", private, "--secret", secret_file).stdout
    assert "secret team/regcred" in which and regs.password not in which

    pulled = run("pull", private, "--secret", secret_file, store=tmp_path / "s")
    assert "Successfully pulled" in pulled.stdout
    assert regs.password not in pulled.stdout + pulled.stderr

    config = tmp_path / "config.json"
    config.write_text(_basic_auth_config(regs))
    result = run(
        "pull", private, "--docker-config", config, "--policy", "Always", store=tmp_path / "s2"
    )
    assert "Successfully pulled" in result.stdout
    from_config = yaml.safe_load(
        run("create-secret", "docker-registry", "fromfile", "--from-docker-config", config).stdout
    )
    assert from_config["type"] == "kubernetes.io/dockerconfigjson"


def test_the_node_docker_config_is_found_without_options(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    """kubelet's search path ($HOME/.docker/config.json here) still supplies credentials."""
    regs = manager_registries
    private = _push_private(regs, tmp_path, "node")
    anonymous = run("pull", private, store=tmp_path / "s", check=False)
    assert anonymous.returncode == 1 and "none matched" in anonymous.stderr
    docker_dir = Path(os.environ["HOME"], ".docker")
    docker_dir.mkdir(parents=True)
    (docker_dir / "config.json").write_text(_basic_auth_config(regs))
    pulled = run("pull", private, "--policy", "Always", store=tmp_path / "s")
    assert "Successfully pulled" in pulled.stdout
    assert run("resolve", private).stdout.strip().startswith("sha256:")


def test_ensure_pods(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    regs = manager_registries
    image = _push(regs.plain.host, tmp_path, f"cli/pod-{uuid.uuid4().hex[:6]}:1")
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {"name": "app", "image": image},
                                    {
                                        "name": "never",
                                        "image": f"{regs.plain.host}/nope:1",
                                        "imagePullPolicy": "Never",
                                    },
                                ]
                            }
                        }
                    },
                }
            ]
        )
    )
    result = run("--json", "ensure", "-f", manifest, store=tmp_path / "s", check=False)
    assert result.returncode == 1
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    assert [(r["container"], r["reason"]) for r in rows] == [
        ("app", None),
        ("never", "ErrImageNeverPull"),
    ]


def test_progress_bars_on_a_terminal(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    """A pseudo-terminal sees rich progress bars (a recorded terminal session)."""
    image = _push(manager_registries.plain.host, tmp_path, f"cli/tty-{uuid.uuid4().hex[:6]}:1")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ocistore", "--store", str(tmp_path / "s"), "pull", image],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"},
    )
    os.close(follower)
    recorded = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            recorded += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(leader)
    (tmp_path / "terminal.log").write_bytes(recorded)
    text = recorded.decode("utf-8", errors="replace")
    assert process.returncode == 0, text
    assert "━" in text  # rich's bar
    assert "Done" in text and "Successfully pulled" in text
