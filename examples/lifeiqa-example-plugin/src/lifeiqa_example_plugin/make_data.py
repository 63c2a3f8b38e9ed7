"""Write an ``example_photos`` folder: images and a ``ratings.csv`` in a user's own column names.

The images and their scores are one of lifeiqa-bench's synthetic sets (KADID-10k-like, made
from images that ship with installed packages, so this needs no download); the CSV renames and
rescales nothing but the columns, as a researcher's own export would look::

    python -m lifeiqa_example_plugin.make_data data/example_photos [--size small|tiny]

``small`` (the default): 48 scenes, each with every distortion type, 1,200 images, so each
20 % test part holds 10 unseen scenes; ``tiny``: a handful of scenes for a seconds-long smoke
run, whose content-disjoint splits leave one or two scenes per part (numbers meaningless).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from harness.data.registry import load_dataset
from harness.data.synth.generate import synthesize
from lifeiqa_example_plugin.datasets import COLUMNS, CSV


def write_example_data(out: str | Path, size: str = "small") -> Path:
    """Write the folder (images and ``ratings.csv``) to ``out``; returns the CSV."""
    out = Path(out).expanduser().resolve()
    images = synthesize("kadid10k", out / "images", size, seed=0)
    dataset = load_dataset("kadid10k", images)
    path = out / CSV
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([COLUMNS[role] for role in ("path", "score", "group", "distortion")])
        for record in dataset.records:
            writer.writerow([os.path.relpath(record.path, out), f"{record.score:.4f}",
                             record.group, record.distortion])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the folder to write")
    parser.add_argument("--size", default="small",
                        help="small (1,200 images, the default) or tiny (a smoke run)")
    args = parser.parse_args()
    path = write_example_data(args.out, args.size)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
