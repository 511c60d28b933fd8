"""Per-epoch held-out (videos_ffpp) and in-source AUC of several runs of one recipe, side by side.

Reads the epoch lines of each run's train.log (written by `python -m deepfake train`) and prints, per epoch, each
run's cross-source and in-source mean, then each group's mean over its runs at the last epoch and at the
checkpoint each run chose. Usage: compare_seeds.py NAME=LOG [NAME=LOG ...] [--group PREFIX ...]
"""
from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

EPOCH = re.compile(r"epoch (\d+): .*?cross-source mean ([0-9.]+|nan) in-source mean ([0-9.]+|nan)")


def epochs(log: Path) -> list[tuple[float, float]]:
    """(cross-source, in-source) per epoch, in order."""
    rows = []
    for line in log.read_text().splitlines():
        m = EPOCH.search(line)
        if m:
            rows.append((float(m.group(2)), float(m.group(3))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="NAME=path/to/train.log")
    ap.add_argument("--group", action="append", default=[], help="name prefix that forms a group of seeds")
    args = ap.parse_args()
    runs = {name: epochs(Path(path)) for name, path in (r.split("=", 1) for r in args.runs)}
    n = max(len(v) for v in runs.values())
    print("| epoch | " + " | ".join(f"{k} cross / in" for k in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for e in range(n):
        cells = [f"{v[e][0]:.3f} / {v[e][1]:.3f}" if e < len(v) else "" for v in runs.values()]
        print(f"| {e + 1} | " + " | ".join(cells) + " |")
    print()
    print("| group | runs | cross-source at last epoch: mean (sd) | at chosen epoch: mean | in-source at last epoch: mean |")
    print("|---|---|---|---|---|")
    for prefix in args.group:
        members = [v for k, v in runs.items() if k.startswith(prefix)]
        last = [v[-1][0] for v in members]
        chosen = [max(c for c, _ in v) for v in members]
        ins = [v[-1][1] for v in members]
        sd = statistics.stdev(last) if len(last) > 1 else float("nan")
        print(f"| {prefix} | {len(members)} | {statistics.mean(last):.3f} ({sd:.3f}) | {statistics.mean(chosen):.3f} | "
              f"{statistics.mean(ins):.3f} |")


if __name__ == "__main__":
    main()
