"""KEP-2535: which pods may use an image that another pod's credentials pulled."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ocistore.manager.pullrecords import (
    PullRecords,
    VerificationPolicy,
    parse_allowlist,
    sanitize_image_name,
)
from ocistore.store import Store
from ocistore.store.pullcredentials import PullCredential

REF = "sha256:" + "a" * 64
SECRET_A = PullCredential.secret(
    namespace="team-a", name="regcred", uid="uid-a", credential_hash="a1" * 32
)
SECRET_B = PullCredential.secret(
    namespace="team-b", name="regcred", uid="uid-b", credential_hash="b2" * 32
)


def records(
    tmp_path: Path, policy: str = "NeverVerifyPreloadedImages", **kw: object
) -> PullRecords:
    return PullRecords(Store(tmp_path / "store"), policy, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("nginx", "nginx"),
        ("nginx:1.27", "nginx"),
        ("docker.io/foo/bar@sha256:" + "b" * 64, "docker.io/foo/bar"),
        ("localhost:5000/app:v1@sha256:" + "b" * 64, "localhost:5000/app"),
        ("localhost:5000/app", "localhost:5000/app"),
    ],
)
def test_sanitize_strips_tag_and_digest_not_port(image: str, name: str) -> None:
    assert sanitize_image_name(image) == name


def test_unknown_policy_is_rejected_with_kubelets_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown image pull credential verification policy"):
        records(tmp_path, "Sometimes")


def test_never_verify_lets_every_pod_use_present_images(tmp_path: Path) -> None:
    rec = records(tmp_path, "NeverVerify")
    rec.record_pull_intent("private:1")
    rec.record_image_pulled("private:1", REF, SECRET_A)
    assert not rec.must_attempt_pull("private:1", REF, [])


def test_preloaded_images_need_no_verification(tmp_path: Path) -> None:
    rec = records(tmp_path)
    # Present in the store but never pulled by us: preloaded.
    assert not rec.must_attempt_pull("preloaded:1", REF, [])


def test_secret_pulled_image_requires_the_same_credential(tmp_path: Path) -> None:
    rec = records(tmp_path)
    rec.record_pull_intent("private:1")
    rec.record_image_pulled("private:1", REF, SECRET_A)
    assert rec.must_attempt_pull("private:1", REF, [])  # no credentials: must pull
    assert rec.must_attempt_pull("private:1", REF, [SECRET_B])
    assert not rec.must_attempt_pull("private:1", REF, [SECRET_A])


def test_same_hash_in_another_secret_grants_access_and_is_remembered(tmp_path: Path) -> None:
    rec = records(tmp_path)
    rec.record_image_pulled("private:1", REF, SECRET_A)
    twin = PullCredential.secret(
        namespace="team-c", name="copy", uid="uid-c", credential_hash=SECRET_A.credential_hash
    )
    assert not rec.must_attempt_pull("private:1", REF, [twin])
    record = rec.store.pull_record(REF)
    assert record is not None
    assert twin in record.credentials["private"]


def test_rotated_secret_keeps_access(tmp_path: Path) -> None:
    rec = records(tmp_path)
    rec.record_image_pulled("private:1", REF, SECRET_A)
    rotated = PullCredential.secret(
        namespace="team-a", name="regcred", uid="uid-a", credential_hash="c3" * 32
    )
    assert not rec.must_attempt_pull("private:1", REF, [rotated])
    record = rec.store.pull_record(REF)
    assert record is not None
    assert rotated in record.credentials["private"]


def test_node_credentials_make_the_image_accessible_to_all(tmp_path: Path) -> None:
    rec = records(tmp_path)
    rec.record_image_pulled("public:1", REF, None)
    assert not rec.must_attempt_pull("public:1", REF, [])


def test_service_account_match(tmp_path: Path) -> None:
    rec = records(tmp_path)
    account = PullCredential.service_account(namespace="team-a", name="builder", uid="sa-uid")
    rec.record_image_pulled("private:1", REF, account)
    assert not rec.must_attempt_pull("private:1", REF, [account])
    other = PullCredential.service_account(namespace="team-a", name="builder", uid="sa-uid-2")
    assert rec.must_attempt_pull("private:1", REF, [other])


def test_always_verify_requires_records_even_for_preloaded(tmp_path: Path) -> None:
    rec = records(tmp_path, "AlwaysVerify")
    assert rec.must_attempt_pull("preloaded:1", REF, [])
    assert rec.must_attempt_pull("anything", "", [])  # no image ref: must pull


def test_allowlisted_images_are_exempt(tmp_path: Path) -> None:
    rec = records(
        tmp_path,
        "NeverVerifyAllowlistedImages",
        allowlist=["docker.io/library/nginx", "registry.example.com/base/*"],
    )
    assert not rec.must_attempt_pull("docker.io/library/nginx", REF, [])
    assert not rec.must_attempt_pull("registry.example.com/base/debian:12", REF, [])
    assert rec.must_attempt_pull("registry.example.com/other", REF, [])
    assert rec.must_attempt_pull("nginx", REF, [])  # the raw pod string is compared


@pytest.mark.parametrize(
    "entry",
    ["nginx", "docker.io/library/nginx:1.27", "/*", "*", " docker.io/x", "reg.io/*/x", "a/*b"],
)
def test_invalid_allowlist_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_allowlist([entry])


def test_intent_survives_a_restart_and_marks_kubelet_pulled(tmp_path: Path) -> None:
    rec = records(tmp_path)
    rec.record_pull_intent("private:1")
    # A new process: the intent file is still there, so the present image counts as pulled
    # by us and must be verified (fail safe).
    again = records(tmp_path)
    assert again.has_intent("private:1")
    assert again.must_attempt_pull("private:1", REF, [])
    again.record_pull_failed("private:1")
    assert not again.has_intent("private:1")


def test_intent_files_are_private(tmp_path: Path) -> None:
    rec = records(tmp_path)
    rec.record_pull_intent("private:1")
    directory = tmp_path / "store" / "image_manager"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list((directory / "pulling").iterdir())
    assert len(files) == 1 and files[0].name.startswith("sha256-")
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_records_survive_a_new_store_object(tmp_path: Path) -> None:
    rec = records(tmp_path)
    rec.record_image_pulled("private:1", REF, SECRET_A)
    again = records(tmp_path)
    assert not again.must_attempt_pull("private:1", REF, [SECRET_A])
    assert again.must_attempt_pull("private:1", REF, [SECRET_B])


def test_policy_values() -> None:
    assert [p.value for p in VerificationPolicy] == [
        "NeverVerify",
        "NeverVerifyPreloadedImages",
        "NeverVerifyAllowlistedImages",
        "AlwaysVerify",
    ]
