# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Word error rate as an `evaluate` metric module (computed by jiwer), loadable offline from its folder."""

import datasets
import evaluate
import jiwer


_DESCRIPTION = """Word error rate: (substitutions + deletions + insertions) / number of reference words, over the
whole corpus (not averaged per sentence)."""
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): transcripts to score.
    references (`list[str]`): reference transcripts, same order.
Returns:
    `float`: the corpus word error rate (0 is perfect; it can exceed 1).
Example:
    >>> wer = evaluate.load("alhubert/metrics/wer")
    >>> wer.compute(predictions=["the cat sat"], references=["the cat sat down"])
    0.25
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WER(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return jiwer.process_words(list(references), list(predictions)).wer
