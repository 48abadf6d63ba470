# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Classification accuracy as an `evaluate` metric module, loadable offline from its folder."""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = "Accuracy: the fraction of predictions equal to their reference label."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted label ids.
    references (`list[int]`): reference label ids, same order.
Returns:
    `dict`: `{"accuracy": float}` between 0 and 1.
Example:
    >>> accuracy = evaluate.load("alhubert/metrics/accuracy")
    >>> accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}
