"""Time the embedded-default DAG: a full run from scratch, the no-op rerun, and each job.

Not a test: it prints figures for docs/benchmarks.md. Per-job wall time and peak memory come from
the Snakemake ``benchmark:`` files of the run.

    .venv/bin/python scripts/bench_pipeline.py [--configfile config/config.yaml] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from regionreasoner.config import load_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [
    str(Path(sys.executable).parent / "snakemake"),
    "--workflow-profile",
    "workflow/profiles/default",
    "--cores",
    "all",
]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def job_table(results: Path) -> list[tuple[str, float, float]]:
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        with open(tsv, newline="") as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        rss = float(record["max_rss"]) if record.get("max_rss", "NA") != "NA" else float("nan")
        rows.append((str(tsv.relative_to(results / "benchmarks").with_suffix("")), float(record["s"]), rss))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--keep", action="store_true", help="keep existing results (time only what is missing)")
    args = parser.parse_args()
    os.chdir(REPO)  # config paths, `extends` included, are relative to the repository root
    results = REPO / load_config(args.configfile).results
    if not args.keep and results.exists():
        shutil.rmtree(results)
    command = SNAKEMAKE + ["--configfile", args.configfile]
    full = timed(command)
    noop = timed(command)
    print(f"config: {args.configfile}")
    print(f"full DAG: {full:.1f} s   no-op rerun: {noop:.1f} s")
    print(f"{'job':48s} {'wall s':>8s} {'peak RSS MiB':>13s}")
    for name, seconds, rss in job_table(results):
        print(f"{name:48s} {seconds:8.1f} {rss:13.0f}")


if __name__ == "__main__":
    main()
