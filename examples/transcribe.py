#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Transcribe audio files with a fine-tuned ALHuBERT CTC model (either recipe of scripts/finetune_ctc.py).

    python examples/transcribe.py --model outputs/asr data/demo_corpus/dev-clean-demo/1001/200/1001-200-0000.flac

Audio is read by the package's one loader (soundfile: WAV, FLAC, OGG, MP3; resampled to the model's rate and
down-mixed), not by the pipeline, whose file decoding needs the FFmpeg program; prints one line per file.
"""

import argparse
import os

from transformers import pipeline

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)
from alhubert.models.audio import load_audio


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="+", help="WAV, FLAC, OGG or MP3 files to transcribe.")
    parser.add_argument("--model", required=True, help="Folder (or Hub id) of a fine-tuned CTC model with processor.")
    parser.add_argument("--device", default=None, help="Device for the model, e.g. cpu or cuda:0.")
    args = parser.parse_args()
    for path in args.audio:
        if not os.path.isfile(path):
            parser.error(f"audio file not found: {path}")

    recognizer = pipeline("automatic-speech-recognition", model=args.model, device=args.device)
    sampling_rate = recognizer.feature_extractor.sampling_rate
    for path in args.audio:
        print(f"{path}\t{recognizer(load_audio(path, sampling_rate))['text']}")


if __name__ == "__main__":
    main()
