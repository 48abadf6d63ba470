#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Classify audio files with a fine-tuned ALHuBERT (AlHubertForSequenceClassification) through Transformers' pipeline.

    python examples/classify.py --model_name_or_path outputs/keyword-spotting --audio yes.wav no.flac --top_k 3

Fine-tune such a model with alhubert finetune-classification. WAV, FLAC, OGG and MP3 work (other formats with the
optional FFmpeg decoder); audio is resampled to the model's sampling rate. A model without `trust_remote_code`
needs `import alhubert` (done here).
"""

import logging
from dataclasses import dataclass, field

from transformers import HfArgumentParser, pipeline

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)
from alhubert.models.audio import load_audio


logger = logging.getLogger(__name__)


@dataclass
class ClassifyArguments:
    model_name_or_path: str = field(metadata={"help": "Fine-tuned audio classification model (folder or Hub id)."})
    audio: list[str] = field(metadata={"help": "Audio files to classify."})
    top_k: int = field(default=3, metadata={"help": "Number of labels to print per file."})
    device: str | None = field(default=None, metadata={"help": "Torch device, e.g. 'cuda:0' (default: CPU)."})


def main():
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(ClassifyArguments).parse_args_into_dataclasses()
    classifier = pipeline("audio-classification", model=args.model_name_or_path, device=args.device)
    sampling_rate = classifier.feature_extractor.sampling_rate
    for path in args.audio:
        predictions = classifier(load_audio(path, sampling_rate), top_k=args.top_k)
        print(path + ": " + ", ".join(f"{p['label']} ({p['score']:.3f})" for p in predictions))


if __name__ == "__main__":
    main()
