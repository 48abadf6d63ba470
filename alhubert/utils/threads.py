# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The `--threads` option of the commands."""


def set_threads(threads: int | None) -> None:
    """`torch.set_num_threads(threads)` when given; otherwise torch's default, which follows `OMP_NUM_THREADS`."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}.")
    import torch

    torch.set_num_threads(threads)


__all__ = ["set_threads"]
