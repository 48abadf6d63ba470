#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""HuBERT's k-means pre-training targets: `alhubert kmeans-targets` (see its --help).

A thin wrapper, kept so that `python scripts/kmeans_targets.py ...` works; the logic lives in
`alhubert.training.kmeans_targets`.
"""

from alhubert.training.kmeans_targets import (
    cli,
    main,  # noqa: F401  (for `kmeans_targets.main(argv)`)
)


if __name__ == "__main__":
    cli()
