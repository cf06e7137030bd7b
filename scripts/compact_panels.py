#!/usr/bin/env python3
"""Re-save result panels in the compact form new ones are written in (a 128-colour palette),
shrunk by ``--scale`` (nearest neighbour: the palette's colours stay as they are).

    .venv/bin/python scripts/compact_panels.py benchmarks/results [--scale 0.75] [--min-kb 100]

Only PNGs larger than ``--min-kb`` are touched. docs/release.md says why the panels are kept this way.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from inference_backend.evaluation.panels import save_compact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--scale", type=float, default=0.75)
    parser.add_argument("--min-kb", type=float, default=100.0)
    args = parser.parse_args()
    before = after = 0
    for path in sorted(args.folder.rglob("*.png")):
        size = path.stat().st_size
        if size < args.min_kb * 1024:
            continue
        save_compact(path, path, args.scale)
        before, after = before + size, after + path.stat().st_size
    print(f"{before / 2**20:.1f} MB -> {after / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
