#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The DistilALHuBERT README's feature-extraction example, with Transformers instead of S3PRL's UpstreamExpert.

    python examples/extract_features.py --model_name_or_path my-name/alhubert-small

Two random 16 kHz waveforms of 10,000 samples go through the feature extractor (padding + attention mask) and the
model. Hidden-state numbering: `hidden_states[0]` is the encoder input and `hidden_states[k]` the output of layer
application k, so the original's `hidden_states[k - 1]` is `hidden_states[k]` here. Without --model_name_or_path the
small preset with RANDOM weights is used, to show the shapes offline.
"""

import logging
import tempfile
from dataclasses import dataclass, field

import torch
from transformers import AutoFeatureExtractor, AutoModel, HfArgumentParser

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)
from alhubert import AlHubertConfig, AlHubertModel


logger = logging.getLogger(__name__)


@dataclass
class ExampleArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "ALHuBERT folder or Hub id; default: the small preset with random weights."}
    )


def main():
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(ExampleArguments).parse_args_into_dataclasses()
    with tempfile.TemporaryDirectory() as random_model_dir:
        model_name_or_path = args.model_name_or_path
        if model_name_or_path is None:
            logger.warning("No --model_name_or_path: using the small preset with RANDOM weights.")
            AlHubertModel(AlHubertConfig.from_preset("small")).save_pretrained(random_model_dir)
            model_name_or_path = random_model_dir
        model = AutoModel.from_pretrained(model_name_or_path).eval()
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)

    data = [torch.randn(10000).numpy() for _ in range(2)]  # 16 kHz
    inputs = feature_extractor(data, sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**inputs, output_hidden_states=True)
    print(states.last_hidden_state.shape)  # hidden state of the last layer: (2, 31, 768) for the presets
    print(len(states.hidden_states))  # encoder input + one per layer application: 13 for the presets


if __name__ == "__main__":
    main()
