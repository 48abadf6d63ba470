# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Character error rate as an `evaluate` metric module (computed by jiwer), loadable offline from its folder."""

import datasets
import evaluate
import jiwer


_DESCRIPTION = """Character error rate: character-level edit distance / number of reference characters (spaces
count), over the whole corpus."""
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): transcripts to score.
    references (`list[str]`): reference transcripts, same order.
Returns:
    `float`: the corpus character error rate (0 is perfect; it can exceed 1).
Example:
    >>> cer = evaluate.load("alhubert/metrics/cer")
    >>> cer.compute(predictions=["the cat"], references=["the bat"])
    0.14285714285714285
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CER(evaluate.Metric):
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
        return jiwer.process_characters(list(references), list(predictions)).cer
