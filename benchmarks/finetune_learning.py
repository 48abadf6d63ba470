#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Proof that fine-tuning learns: CTC fine-tuning on the bundled demo corpus, CER on its held-out dev utterances.

Starts from `--model_name_or_path` (e.g. a demo-distilled student) or, without it, from a randomly initialised
ALHuBERT of the "small" preset's layout (12 applications of 2 shared layers) at a reduced width, runs
`scripts/finetune_ctc.py` with the chosen recipe, evaluates on dev-clean-demo before training and every
`--eval_steps`, and prints the CER/WER curve and the wall time. CPU-heavy: run it once, e.g.

    python benchmarks/finetune_learning.py --recipe full --max_steps 600
    python benchmarks/finetune_learning.py --recipe superb --max_steps 600
"""

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from alhubert import AlHubertConfig, AlHubertModel


REPO = Path(__file__).resolve().parents[1]


def load_finetune_script():
    spec = importlib.util.spec_from_file_location("finetune_ctc", REPO / "scripts" / "finetune_ctc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_small_student(folder: str, hidden_size: int, conv_channels: int) -> str:
    """A randomly initialised student: the small preset's layer sharing, `hidden_size` wide."""
    config = AlHubertConfig.from_preset(
        "small",
        hidden_size=hidden_size,
        num_attention_heads=max(1, hidden_size // 64),
        intermediate_size=4 * hidden_size,
        conv_dim=(conv_channels,) * 7,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    )
    torch.manual_seed(0)
    AlHubertModel(config).save_pretrained(folder)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", choices=("full", "superb"), default="full", help="Fine-tuning recipe.")
    parser.add_argument("--model_name_or_path", default=None, help="Start here instead of a random small student.")
    parser.add_argument("--hidden_size", type=int, default=256, help="Width of the random student.")
    parser.add_argument("--conv_channels", type=int, default=128, help="Feature-encoder channels (random student).")
    parser.add_argument("--max_steps", type=int, default=600, help="Optimizer steps.")
    parser.add_argument("--eval_steps", type=int, default=150, help="Evaluate on dev-clean-demo every N steps.")
    parser.add_argument("--batch_size", type=int, default=8, help="Utterances per step.")
    parser.add_argument("--learning_rate", type=float, default=None, help="Default: 5e-4 (full), 1e-4 (superb).")
    parser.add_argument("--superb_lstm_size", type=int, default=1024, help="Superb recipe: LSTM units per direction.")
    parser.add_argument("--output_dir", default=None, help="Where the fine-tuned model goes (default: a temp dir).")
    args = parser.parse_args()

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    finetune = load_finetune_script()
    corpus = REPO / "data" / "demo_corpus"
    with tempfile.TemporaryDirectory() as workdir:
        start = args.model_name_or_path or random_small_student(
            os.path.join(workdir, "student"), args.hidden_size, args.conv_channels
        )
        learning_rate = args.learning_rate or (5e-4 if args.recipe == "full" else 1e-4)
        argv = [
            "--model_name_or_path", start, "--recipe", args.recipe,
            "--librispeech_root", str(corpus), "--librispeech_sets", "train-clean-demo",
            "--eval_librispeech_sets", "dev-clean-demo",
            "--output_dir", args.output_dir or os.path.join(workdir, "finetuned"), "--overwrite_output_dir",
            "--do_train", "--do_eval", "--max_steps", str(args.max_steps),
            "--per_device_train_batch_size", str(args.batch_size), "--per_device_eval_batch_size", "10",
            "--learning_rate", str(learning_rate), "--warmup_steps", str(args.max_steps // 10),
            "--eval_strategy", "steps", "--eval_steps", str(args.eval_steps), "--eval_on_start",
            "--save_strategy", "no", "--logging_steps", "25", "--report_to", "none", "--seed", "0",
            "--use_cpu", "--dataloader_num_workers", "0", "--superb_lstm_size", str(args.superb_lstm_size),
        ]
        if args.recipe == "full" and args.model_name_or_path is None:
            argv += ["--freeze_feature_encoder", "False"]  # a random feature encoder has to learn too
        if args.recipe == "superb":
            argv += ["--weight_decay", "0"]  # Adam, as in SUPERB
        began = time.perf_counter()
        trainer = finetune.main(argv)
        wall = time.perf_counter() - began

    curve = [
        {"step": entry["step"], "cer": round(entry["eval_cer"], 4), "wer": round(entry["eval_wer"], 4)}
        for entry in trainer.state.log_history
        if "eval_cer" in entry
    ]
    result = {
        "recipe": args.recipe,
        "start": args.model_name_or_path or f"random small-preset student, hidden {args.hidden_size}",
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "steps": args.max_steps,
        "batch_size": args.batch_size,
        "learning_rate": learning_rate,
        "threads": torch.get_num_threads(),
        "wall_seconds": round(wall, 1),
        "dev_curve": curve,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
