# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""S3PRL hubconf: registers ALHuBERT as the S3PRL upstream `alhubert_hf`.

S3PRL's `s3prl/hub.py` collects every public callable of each `upstream/*/hubconf.py` as an upstream name, so the
expert class is imported under a private alias, as S3PRL's own hubconfs do. In an S3PRL clone,
`s3prl/upstream/alhubert_hf/hubconf.py` holds one line: `from alhubert.original.hubconf import *`.
"""

from typing import Any

from .upstream import UpstreamExpert as _UpstreamExpert


__all__ = ["alhubert_hf"]


def alhubert_hf(ckpt: str, *args: Any, **kwargs: Any) -> _UpstreamExpert:
    """ALHuBERT from a converted directory, a Hub id or an original `.ckpt` (S3PRL's `-k` / `--upstream_ckpt`)."""
    return _UpstreamExpert(ckpt)
