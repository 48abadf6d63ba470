#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Distil a HuBERT teacher into an ALHuBERT student: `alhubert distill` (see its --help).

A thin wrapper, kept so that `python scripts/distill.py ...` and `accelerate launch scripts/distill.py ...` work;
the logic lives in `alhubert.training.run_distillation`.
"""

from alhubert.training.run_distillation import (
    cli,
    main,  # noqa: F401  (for `import distill; distill.main(argv)`)
)


if __name__ == "__main__":
    cli()
