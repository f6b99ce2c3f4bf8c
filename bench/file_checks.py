"""Cost of the up-front image file checks (``zoo.data.file_checks``) against decoding every file fully.

    python bench/file_checks.py [FOLDER ...]      # default: every image under ../shared/data

Prints, for the files found: a first check (nothing cached), a second check (answered from the cache) and a full
decode of every file with ``zoo.data.io.load_image``, as the training datasets do. The three runs are interleaved
``--repeats`` times (each with a fresh cache) and the medians are printed, with the machine's name.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from zoo.data.file_checks import check_image_files
from zoo.data.io import list_images, load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", default=[str(Path(__file__).resolve().parents[1] / "../shared/data")])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files = [path for folder in args.folders for path in list_images(folder, recursive=True)]
    megabytes = sum(path.stat().st_size for path in files) / 2**20
    print(f"machine: {platform.node()} ({os.cpu_count()} CPUs); {len(files)} files, {megabytes:.0f} MB")
    times: dict[str, list[float]] = {"first check": [], "cached check": [], "full decode": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as home:
            os.environ["ZOO_HOME"] = home
            for name in ("first check", "cached check"):
                start = time.perf_counter()
                problems = check_image_files(files, progress=False)
                times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        for path in files:
            load_image(path)
        times["full decode"].append(time.perf_counter() - start)
    print(f"unusable files: {len(problems)}")
    decode = statistics.median(times["full decode"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>13}: {median:7.3f} s  ({1000 * median / len(files):6.2f} ms/file, {median / decode:5.3f}x full)")


if __name__ == "__main__":
    main()
