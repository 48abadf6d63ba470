#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Upload a saved ALHuBERT model to the Hub: `alhubert push-to-hub` (see its --help).

A thin wrapper, kept so that `python scripts/push_to_hub.py ...` works; the logic lives in `alhubert.hub.run_upload`.
"""

from alhubert.hub.run_upload import main


if __name__ == "__main__":
    main()
