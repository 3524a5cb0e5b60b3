"""MANIFEST.json written and checked: every file's sha256 (computed here with hashlib, not with
the code under test), a changed, missing or added file named, the newest package by MANIFEST
time, and the verified reader refusing what was changed after verification."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from heartml.package.manifest import (
    MANIFEST,
    PackagingError,
    newest_package,
    newest_package_or_fail,
    package_dirs,
    read_manifest,
    verified_bytes,
    verify_checksums,
    write_manifest,
)

pytestmark = pytest.mark.task4


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    directory = tmp_path / "heart_disease_model_svm_v3"
    (directory / "sub").mkdir(parents=True)
    (directory / "a.txt").write_bytes(b"alpha\n")
    (directory / "sub" / "b.bin").write_bytes(bytes(range(256)))
    return directory


def test_manifest_lists_every_file_with_its_sha256_and_size(folder: Path) -> None:
    written = write_manifest(folder, {"package": folder.name, "version": "3"})
    on_disk = json.loads((folder / MANIFEST).read_text())
    assert on_disk == written
    assert on_disk["package"] == folder.name and on_disk["version"] == "3"
    assert on_disk["files"] == {
        "a.txt": {"sha256": hashlib.sha256(b"alpha\n").hexdigest(), "bytes": 6},
        "sub/b.bin": {"sha256": hashlib.sha256(bytes(range(256))).hexdigest(), "bytes": 256},
    }
    assert verify_checksums(folder) == on_disk


def test_a_changed_file_is_named_with_both_checksums(folder: Path) -> None:
    write_manifest(folder, {})
    (folder / "sub" / "b.bin").write_bytes(b"tampered")
    with pytest.raises(PackagingError, match=r"sub/b\.bin: sha256 [0-9a-f]{64} does not match"):
        verify_checksums(folder)


def test_a_missing_file_and_an_added_file_are_named(folder: Path) -> None:
    write_manifest(folder, {})
    (folder / "a.txt").unlink()
    with pytest.raises(PackagingError, match=r"a\.txt: listed in MANIFEST\.json but missing"):
        verify_checksums(folder)
    (folder / "a.txt").write_bytes(b"alpha\n")
    (folder / "sub" / "extra.py").write_text("print('hi')")
    with pytest.raises(PackagingError, match=r"sub/extra\.py: present but not listed"):
        verify_checksums(folder)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no MANIFEST.json"), ("{not json", "not valid JSON"), ('{"files": 3}', "no 'files'")],
)
def test_an_unreadable_manifest_is_a_clear_error(
    folder: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (folder / MANIFEST).write_text(content)
    with pytest.raises(PackagingError, match=message):
        read_manifest(folder)


def test_verified_bytes_refuses_a_file_changed_after_verification(folder: Path) -> None:
    manifest = write_manifest(folder, {})
    assert verified_bytes(folder, manifest, "a.txt") == b"alpha\n"
    (folder / "a.txt").write_bytes(b"swapped after the check\n")
    with pytest.raises(PackagingError, match=r"a\.txt: changed after verification"):
        verified_bytes(folder, manifest, "a.txt")
    with pytest.raises(PackagingError, match="nope: not in the package"):
        verified_bytes(folder, manifest, "nope")


def test_newest_package_is_chosen_by_manifest_time_and_needs_a_manifest(tmp_path: Path) -> None:
    stamps = {"heart_disease_model_svm_v1": 1_000, "heart_disease_model_random_forest_v2": 3_000}
    for name, stamp in stamps.items():
        (tmp_path / name).mkdir()
        write_manifest(tmp_path / name, {})
        os.utime(tmp_path / name / MANIFEST, (stamp, stamp))
    (tmp_path / "heart_disease_model_svm_v9").mkdir()  # being written: no MANIFEST yet
    (tmp_path / "breast_cancer_model_svm_v1").mkdir()  # another dataset's prefix
    write_manifest(tmp_path / "breast_cancer_model_svm_v1", {})

    found = package_dirs(tmp_path, "heart_disease_model")
    assert [p.name for p in found] == [
        "heart_disease_model_random_forest_v2",
        "heart_disease_model_svm_v1",
    ]
    assert newest_package(tmp_path, "heart_disease_model") == found[0]
    assert newest_package(tmp_path, "no_such_prefix") is None
    with pytest.raises(PackagingError, match="no package under") as caught:
        newest_package_or_fail(tmp_path, "no_such_prefix")
    assert "heartml package" in (caught.value.hint or "")
