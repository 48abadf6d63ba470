#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune ALHuBERT for speech recognition (CTC): `alhubert finetune-ctc` (see its --help).

A thin wrapper, kept so that `python scripts/finetune_ctc.py ...` and
`accelerate launch scripts/finetune_ctc.py ...` work; the logic lives in `alhubert.training.run_finetune_ctc`.
"""

from alhubert.training.run_finetune_ctc import (
    cli,
    main,  # noqa: F401  (for `import finetune_ctc; finetune_ctc.main(argv)`)
)


if __name__ == "__main__":
    cli()
