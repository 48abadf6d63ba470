# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Helpers shared by the package's commands: atomic writes and folder replacement (`files`), one-line error text
(`errors`), the `--threads` option (`threads`), and checks that a loaded model is whole with finite outputs
(`model_checks`)."""
