"""Where a result came from: hashes against hashlib, git state against a real repository made
here with git, atomic JSON and atomic folder swaps (an error leaves the old output as it was)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from heartml.provenance import (
    git_commit,
    library_versions,
    read_json,
    sha256_file,
    staged_directory,
    write_json,
)

pytestmark = pytest.mark.task1


def test_sha256_of_a_file_larger_than_one_read_block(tmp_path: Path) -> None:
    content = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    path = tmp_path / "blob"
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()


def test_json_round_trip_with_numpy_values_and_paths(tmp_path: Path) -> None:
    payload = {"n": np.int64(3), "x": np.float32(0.5), "v": np.arange(3), "p": Path("/a/b")}
    target = tmp_path / "deeper" / "out.json"
    write_json(target, payload)
    assert json.loads(target.read_text()) == {"n": 3, "x": 0.5, "v": [0, 1, 2], "p": "/a/b"}
    assert read_json(target)["v"] == [0, 1, 2]
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temp file left


def test_a_value_json_cannot_hold_leaves_the_old_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"kept": True})
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json(target, {"bad": object()})
    assert read_json(target) == {"kept": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_staged_directory_swaps_in_on_success_and_keeps_the_old_on_error(
    tmp_path: Path,
) -> None:
    final = tmp_path / "package"
    with staged_directory(final) as staging:
        (staging / "v1.txt").write_text("one")
    assert [p.name for p in final.iterdir()] == ["v1.txt"]

    with pytest.raises(RuntimeError, match="export failed"), staged_directory(final) as staging:
        (staging / "v2.txt").write_text("half")
        raise RuntimeError("export failed")
    assert [p.name for p in final.iterdir()] == ["v1.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["package"]  # staging removed

    with staged_directory(final) as staging:
        (staging / "v2.txt").write_text("two")
    assert [p.name for p in final.iterdir()] == ["v2.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["package"]  # previous removed


def test_git_commit_reads_head_and_marks_a_dirty_tree(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None  # not a checkout

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "f").write_text("1")
    git("add", "f")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD")
    assert git_commit(tmp_path) == head
    (tmp_path / "f").write_text("2")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_library_versions_skip_what_is_not_installed() -> None:
    versions = library_versions(("scikit-learn", "no-such-distribution-xyz"))
    assert versions["scikit-learn"] == metadata.version("scikit-learn")
    assert "no-such-distribution-xyz" not in versions
    assert versions["python"].count(".") == 2
