"""What the Extensions Index takes: a tracked tree of at most 40 MB, and a release repository
cut with a fresh history within the Index's 100 MB."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TREE_LIMIT_MB = 40


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    return [REPO_ROOT / name for name in listing.decode().split("\0") if name]


def test_the_tracked_tree_is_at_most_40_mb():
    size = sum(path.stat().st_size for path in tracked_files() if path.is_file())
    assert size <= TREE_LIMIT_MB * 2**20, f"{size / 2**20:.1f} MB tracked (docs/release.md says what keeps it small)"


def test_a_fresh_history_cut_passes_the_index_size_check(tmp_path):
    tracked_files()
    completed = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "release.py"), "--out", str(tmp_path / "release")],
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "clone" in completed.stdout
    log = subprocess.run(["git", "log", "--oneline"], cwd=tmp_path / "release", capture_output=True, text=True).stdout
    assert len(log.splitlines()) == 1
