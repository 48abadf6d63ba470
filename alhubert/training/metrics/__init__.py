# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The fine-tuning commands' evaluation metrics, computed offline: WER and CER with jiwer, accuracy with numpy.

jiwer is what the Hub's `evaluate` "wer" and "cer" modules wrap; called directly, nothing is downloaded or cached.
Both error rates are corpus-level: total edits / total reference words (characters, spaces included).
"""

import numpy as np


def error_rates(predictions: list[str], references: list[str]) -> dict[str, float]:
    """`{"wer": ..., "cer": ...}` of `predictions` against `references` (0 is perfect; either can exceed 1).

    >>> error_rates(["the cat sat"], ["the cat sat down"])["wer"]
    0.25
    """
    import jiwer

    references, predictions = list(references), list(predictions)
    return {
        "wer": jiwer.process_words(references, predictions).wer,
        "cer": jiwer.process_characters(references, predictions).cer,
    }


def accuracy(predictions: np.ndarray | list[int], references: np.ndarray | list[int]) -> dict[str, float]:
    """`{"accuracy": ...}`: the fraction of predicted label ids equal to their reference."""
    return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}


__all__ = ["accuracy", "error_rates"]
