#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Convert an original DistilALHuBERT checkpoint: `alhubert convert` (see its --help).

A thin wrapper, kept so that `python scripts/convert_original_checkpoint.py ...` works; the logic lives in
`alhubert.original.run_conversion`.
"""

from alhubert.original.run_conversion import cli


if __name__ == "__main__":
    cli()
