# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Small helpers shared by the package's commands: atomic writes (`files`) and one-line error text (`errors`)."""
