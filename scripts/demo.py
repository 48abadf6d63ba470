#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""`make demo`: distil the random-weight demo teacher into a tiny ALHuBERT on the bundled corpus, offline.

Runs `alhubert distill demo`, then reloads the result with `AutoModel` and prints the loss at the start
and the end and the shapes of the hidden states. The demo teacher has random weights: the point is the machinery,
not the features.
"""

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import torch
from transformers import AutoFeatureExtractor, AutoModel


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO_ROOT = Path(__file__).resolve().parent.parent

from alhubert.models.audio import load_audio  # noqa: E402
from alhubert.training import run_distillation  # noqa: E402


logger = logging.getLogger(__name__)


DEMO_MARKER = ".alhubert-demo"  # written into the folders this script creates; only those are ever replaced


def prepare_output_dir(output_dir: Path):
    """A new folder, or one this demo wrote before (replaced); anything else is refused, never deleted."""
    if output_dir.exists() and any(output_dir.iterdir()):
        if not (output_dir / DEMO_MARKER).is_file():
            sys.exit(
                f"error: {output_dir} exists and was not written by the demo; choose another --output_dir "
                "(the demo never deletes what it did not create)."
            )
        print(f"Replacing the previous demo result in {output_dir}")
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / DEMO_MARKER).write_text("written by scripts/demo.py; the next demo run may replace this folder\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--output_dir",
        default="outputs/demo-student",
        help="Where the demo student is written: a new folder, or a previous demo result (replaced).",
    )
    parser.add_argument("--max_steps", type=int, default=None, help="Override the demo's number of optimizer steps.")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir).resolve()
    os.chdir(REPO_ROOT)

    prepare_output_dir(output_dir)
    overrides = ["--output_dir", str(output_dir), "--overwrite_output_dir"]  # holds only the marker
    if args.max_steps is not None:
        overrides += ["--max_steps", str(args.max_steps)]

    start = time.perf_counter()
    trainer = run_distillation.main(
        ["demo", "--librispeech_root", str(REPO_ROOT / "data" / "demo_corpus"), *overrides]
    )
    wall_time = time.perf_counter() - start

    history = trainer.state.log_history
    train_losses = [(entry["step"], entry["loss"]) for entry in history if "loss" in entry]
    eval_losses = [(entry["step"], entry["eval_loss"]) for entry in history if "eval_loss" in entry]
    model = AutoModel.from_pretrained(output_dir).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(output_dir)
    clip = next(iter(sorted(Path("data/demo_corpus/dev-clean-demo").rglob("*.flac"))))
    inputs = feature_extractor(load_audio(str(clip), 16000), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, output_hidden_states=True)

    print("\n===== ALHuBERT demo distillation (teacher with RANDOM weights) =====")
    print(f"wall time: {wall_time:.1f} s for {trainer.state.global_step} optimizer steps")
    if eval_losses:
        print(
            f"dev loss (eval mode): start {eval_losses[0][1]:.4f} (step {eval_losses[0][0]}) -> "
            f"end {eval_losses[-1][1]:.4f} (step {eval_losses[-1][0]})"
        )
    if train_losses:
        print(
            f"training loss: start {train_losses[0][1]:.4f} (step {train_losses[0][0]}) -> "
            f"end {train_losses[-1][1]:.4f} (step {train_losses[-1][0]})"
        )
    print(f"reloaded with AutoModel: {type(model).__name__} from {output_dir}")
    print(f"input {clip.name}: {tuple(inputs['input_values'].shape)} samples")
    print(f"last_hidden_state: {tuple(outputs.last_hidden_state.shape)}")
    print(f"hidden_states: {len(outputs.hidden_states)} x {tuple(outputs.hidden_states[0].shape)}")


if __name__ == "__main__":
    main()
