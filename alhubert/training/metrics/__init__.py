# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""`evaluate` metric modules shipped with the package, so that evaluation needs no network.

`evaluate.load("wer")` downloads its script from the Hub; `load_metric("wer")` loads the same kind of module from
this folder (`wer`, `cer`: through jiwer; `accuracy`).
"""

from pathlib import Path

import evaluate


METRICS_DIR = Path(__file__).parent
AVAILABLE_METRICS = tuple(sorted(path.name for path in METRICS_DIR.iterdir() if (path / f"{path.name}.py").is_file()))


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a bundled metric (`"wer"`, `"cer"` or `"accuracy"`) with `evaluate.load`, offline."""
    if name not in AVAILABLE_METRICS:
        raise ValueError(f"Unknown metric {name!r}; bundled metrics: {AVAILABLE_METRICS}.")
    return evaluate.load(str(METRICS_DIR / name))
