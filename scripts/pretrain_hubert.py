#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Pre-train a HuBERT encoder on k-means targets: `alhubert pretrain-hubert` (see its --help).

A thin wrapper, kept so that `python scripts/pretrain_hubert.py ...` and `accelerate launch scripts/pretrain_hubert.py
...` work; the logic lives in `alhubert.training.run_pretrain_hubert`.
"""

from alhubert.training.run_pretrain_hubert import (
    cli,
    main,  # noqa: F401  (for `pretrain_hubert.main(argv)`)
)


if __name__ == "__main__":
    cli()
