#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Transcribe audio files with a fine-tuned ALHuBERT CTC model (either recipe of scripts/finetune_ctc.py).

    python examples/transcribe.py --model outputs/asr data/demo_corpus/dev-clean-demo/1001/200/1001-200-0000.flac

Any sampling rate and channel count is accepted (the pipeline resamples and down-mixes); prints one line per file.
"""

import argparse
import os

from transformers import pipeline

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="+", help="wav/flac (or any FFmpeg-readable) files to transcribe.")
    parser.add_argument("--model", required=True, help="Folder (or Hub id) of a fine-tuned CTC model with processor.")
    parser.add_argument("--device", default=None, help="Device for the model, e.g. cpu or cuda:0.")
    args = parser.parse_args()
    for path in args.audio:
        if not os.path.isfile(path):
            parser.error(f"audio file not found: {path}")

    recognizer = pipeline("automatic-speech-recognition", model=args.model, device=args.device)
    for path in args.audio:
        print(f"{path}\t{recognizer(path)['text']}")


if __name__ == "__main__":
    main()
