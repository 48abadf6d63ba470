# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""One-line error text for the commands (`alhubert/models/` keeps its own copy: remote code imports nothing else)."""


def one_line(text: object) -> str:
    """`text` (an exception or a message) with every run of whitespace, newlines included, made one space."""
    return " ".join(str(text).split())


__all__ = ["one_line"]
