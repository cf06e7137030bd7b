#!/usr/bin/env python3
"""Cut the release repository for the Slicer Extensions Index: this commit's tracked files in a
new repository with a fresh history (one commit), and its size checked against the Index's limit.

    python3 scripts/release.py --out ../SlicerMRISuperResolution-release [--commit HEAD] [--limit-mb 100]

The Index clones the repository it lists; its size check counts the clone (history included),
which the development history would exceed. Exits 1 when the clone would be above the limit.
Needs only git and Python. docs/release.md says how the cut is pushed.
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the release repository")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--limit-mb", type=float, default=100.0, help="the Index's limit on a repository (default 100 MB)")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} exists and is not empty")
    commit = git("rev-parse", args.commit).strip()
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, check=True, capture_output=True).stdout
    args.out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(args.out, filter="data")
    git("init", "-q", "-b", "main", cwd=args.out)
    git("add", "-A", cwd=args.out)
    git("-c", "user.name=MRISuperResolution release", "-c", "user.email=release@invalid", "commit", "-q", "-m",
        f"MRISuperResolution, from development commit {commit[:12]}", cwd=args.out)  # fmt: skip
    git("gc", "-q", "--aggressive", "--prune=now", cwd=args.out)
    tree, history = folder_bytes(args.out) - folder_bytes(args.out / ".git"), folder_bytes(args.out / ".git")
    clone = tree + history
    print(f"release repository {args.out}: tracked tree {tree / 2**20:.1f} MB, history {history / 2**20:.1f} MB, clone {clone / 2**20:.1f} MB "
          f"(the Index's limit: {args.limit_mb:g} MB)")  # fmt: skip
    if clone > args.limit_mb * 2**20:
        print("above the limit: shrink the tracked tree (docs/release.md)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
