"""Cold start time of `tunequeue --help` next to a bare `python -c pass`.

Each command runs N times as a fresh subprocess (the same interpreter as this script); the best run
is reported, since the minimum is the least disturbed by other load. The target: `tunequeue --help`
under 0.3 s in total, which holds only while heavy libraries (torch, transformers, textual) stay out
of the CLI's import path.

Usage: python benchmarks/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

TARGET_SECONDS = 0.3


def best_of(command: list[str], runs: int) -> float:
    """Fastest wall time of ``runs`` runs of ``command`` (output discarded; a failure aborts)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    """Time both commands and print the results; exit 1 when the CLI misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (best is kept)")
    args = parser.parse_args()
    bare = best_of([sys.executable, "-c", "pass"], args.runs)
    cli = best_of([sys.executable, "-m", "tunequeue", "--help"], args.runs)
    print(f"python -c pass      {bare:6.3f} s")
    print(f"tunequeue --help    {cli:6.3f} s")
    print(f"difference          {cli - bare:6.3f} s")
    verdict = "ok" if cli < TARGET_SECONDS else "too slow"
    print(f"target              < {TARGET_SECONDS} s for tunequeue --help: {verdict} (best of {args.runs})")
    return 0 if cli < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
