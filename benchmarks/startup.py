#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Start-up time: wall seconds of `import alhubert` and of every command's `--help`, each a fresh process.

    python benchmarks/startup.py [--repeats 5]

Prints the median and range per command, with the machine's load average (time only on a quiet machine).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


def commands() -> dict[str, list[str]]:
    python = [sys.executable]
    alhubert = [shutil.which("alhubert") or str(Path(sys.executable).with_name("alhubert"))]
    rows = {"import alhubert": python + ["-c", "import alhubert"]}
    for script in ("distill", "finetune_ctc", "finetune_classification", "convert_original_checkpoint", "push_to_hub"):
        rows[f"python scripts/{script}.py --help"] = python + [str(REPO / "scripts" / f"{script}.py"), "--help"]
    for command in ("", "distill", "finetune-ctc", "extract", "export onnx"):
        rows[" ".join(["alhubert", command, "--help"]).replace("  ", " ")] = alhubert + command.split() + ["--help"]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Fresh processes per command (default: 5).")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print("| command | median s | min s | max s |\n|---|---:|---:|---:|")
    for name, argv_ in commands().items():
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run(argv_, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            seconds.append(time.perf_counter() - start)
        print(f"| `{name}` | {statistics.median(seconds):.2f} | {min(seconds):.2f} | {max(seconds):.2f} |", flush=True)
    print(f"load average at end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
