#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune ALHuBERT for audio classification: `alhubert finetune-classification` (see its --help).

A thin wrapper, kept so that `python scripts/finetune_classification.py ...` and
`accelerate launch scripts/finetune_classification.py ...` work; the logic lives in
`alhubert.training.run_finetune_classification`.
"""

from alhubert.training.run_finetune_classification import (
    cli,
    main,  # noqa: F401  (for `import finetune_classification; finetune_classification.main(argv)`)
)


if __name__ == "__main__":
    cli()
