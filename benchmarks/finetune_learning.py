#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Proof that fine-tuning learns: CTC fine-tuning on the bundled demo corpus, CER/WER on its held-out dev utterances.

Starts from `--model_name_or_path` or, without it, from a randomly initialised ALHuBERT with the "small" preset's
sharing (HuBERT's conv stack, 2 distinct layers applied cyclically), narrow and shallow enough to train on 2 CPU cores,
runs `alhubert finetune-ctc` (`alhubert.training.run_finetune_ctc`) with the chosen recipe, evaluates on
dev-clean-demo (unpadded, one utterance at a time) before training and every `--eval_steps`, and prints the CER/WER
curve, the training loss and the wall time as JSON.

The random student differs from the presets in two ways, both measured on this corpus: pre-LN layers (a post-LN
student from random weights stays on the all-blank CTC plateau for hundreds of steps), and dropout plus SpecAugment
(time and channel masks) because 120 utterances are memorised long before they generalise.

- `--recipe full`: every weight trains, the convolutional feature encoder included (freezing a randomly initialised
  feature encoder would leave the model to learn from random filters).
- `--recipe superb`: the upstream is frozen by definition. `--superb_upstream finetuned` (default) first runs the
  full recipe above and uses its fine-tuned encoder as the frozen upstream (a random frozen upstream gives the head
  nothing but random features); `random` uses the random student itself. The output lists both runs.

CPU-heavy (minutes): run it once per recipe, e.g.

    python benchmarks/finetune_learning.py --recipe full
    python benchmarks/finetune_learning.py --recipe superb
"""

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser

from alhubert import AlHubertConfig, AlHubertModel


REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "demo_corpus"


@dataclass
class LearningBenchmarkArguments:
    """The starting model, the recipe and its training settings (defaults: the configuration of the README table)."""

    recipe: str = field(
        default="full", metadata={"help": "Fine-tuning recipe to prove.", "choices": ("full", "superb")}
    )
    threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch (torch.set_num_threads). Default: OMP_NUM_THREADS when set, else "
            "torch's default (all cores)."
        },
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Start from this encoder instead of a random student."}
    )
    hidden_size: int = field(default=192, metadata={"help": "Random student: encoder width."})
    num_attention_heads: int = field(default=4, metadata={"help": "Random student: attention heads."})
    num_hidden_layers: int = field(default=6, metadata={"help": "Random student: layer applications."})
    num_hidden_groups: int = field(default=2, metadata={"help": "Random student: distinct (shared) layers."})
    conv_channels: int = field(default=32, metadata={"help": "Random student: channels of each conv layer."})
    stable_layer_norm: bool = field(
        default=True,
        metadata={
            "help": "Random student: pre-LN layers (HuBERT Large order). Post-LN (the presets' order) stays on "
            "the all-blank CTC plateau for hundreds of steps from random weights."
        },
    )
    dropout: float = field(
        default=0.1, metadata={"help": "Random student: hidden, attention, activation and feature-projection dropout."}
    )
    mask_time_length: int = field(default=5, metadata={"help": "Random student: SpecAugment time-mask span (frames)."})
    mask_feature_prob: float = field(default=0.2, metadata={"help": "Random student: SpecAugment channel masking."})
    mask_feature_length: int = field(default=16, metadata={"help": "Random student: channel-mask span."})
    max_steps: int = field(default=1200, metadata={"help": "Full recipe: optimizer steps."})
    learning_rate: float = field(
        default=1e-3, metadata={"help": "Full recipe: peak learning rate, reached after a tenth of the steps."}
    )
    freeze_feature_encoder: bool = field(
        default=False,
        metadata={
            "help": "Full recipe: freeze the conv feature encoder (sensible for a pre-trained "
            "--model_name_or_path, not for a random student)."
        },
    )
    mask_time_prob: float = field(default=0.2, metadata={"help": "Full recipe: SpecAugment time-masking probability."})
    superb_upstream: str = field(
        default="finetuned",
        metadata={
            "help": "Superb recipe without --model_name_or_path: the frozen upstream is the encoder of a "
            "full-recipe run made first ('finetuned') or the random student ('random').",
            "choices": ("finetuned", "random"),
        },
    )
    superb_max_steps: int = field(default=600, metadata={"help": "Superb recipe: optimizer steps."})
    superb_learning_rate: float = field(default=1e-3, metadata={"help": "Superb recipe: Adam learning rate."})
    superb_lstm_size: int = field(default=256, metadata={"help": "Superb recipe: LSTM units per direction."})
    batch_size: int = field(default=8, metadata={"help": "Training utterances per step."})
    eval_steps: int = field(default=200, metadata={"help": "Evaluate on dev-clean-demo every N steps."})
    seed: int = field(default=0, metadata={"help": "Seed of the random student and of training."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Keep the last fine-tuned model here (default: a temporary folder)."}
    )


def load_finetune_script():
    from alhubert.training import run_finetune_ctc

    return run_finetune_ctc


def random_student(folder: str, args: LearningBenchmarkArguments) -> str:
    """Save a randomly initialised student with the small preset's layer sharing, narrower and shallower."""
    config = AlHubertConfig.from_preset(
        "small",
        hidden_size=args.hidden_size,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=4 * args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_hidden_groups=args.num_hidden_groups,
        conv_dim=(args.conv_channels,) * 7,
        hidden_dropout=args.dropout,
        attention_dropout=args.dropout,
        activation_dropout=args.dropout,
        feat_proj_dropout=args.dropout,
        mask_time_length=args.mask_time_length,
        mask_feature_prob=args.mask_feature_prob,
        mask_feature_length=args.mask_feature_length,
        do_stable_layer_norm=args.stable_layer_norm,
    )
    torch.manual_seed(args.seed)
    AlHubertModel(config).save_pretrained(folder)
    return folder


def finetune(finetune_script, recipe: str, start: str, output_dir: str, args: LearningBenchmarkArguments):
    """Run `scripts/finetune_ctc.py` on the demo corpus; return the trainer and the wall time in seconds."""
    full = recipe == "full"
    steps = args.max_steps if full else args.superb_max_steps
    argv = [
        "--model_name_or_path", start, "--recipe", recipe,
        "--librispeech_root", str(CORPUS), "--librispeech_sets", "train-clean-demo",
        "--eval_librispeech_sets", "dev-clean-demo",
        "--output_dir", output_dir, "--overwrite_output_dir",
        "--do_train", "--do_eval", "--max_steps", str(steps), "--per_device_train_batch_size", str(args.batch_size),
        # Unpadded evaluation, as in the ASR pipeline: greedy decoding of a padded batch also reads padding frames.
        "--per_device_eval_batch_size", "1",
        "--learning_rate", str(args.learning_rate if full else args.superb_learning_rate),
        "--warmup_steps", str(steps // 10),
        "--eval_strategy", "steps", "--eval_steps", str(args.eval_steps), "--eval_on_start",
        "--save_strategy", "no", "--logging_steps", "50", "--report_to", "none", "--seed", str(args.seed),
        "--use_cpu", "--dataloader_num_workers", "0", "--disable_tqdm", "False",  # the Trainer's progress bar
    ]  # fmt: skip
    if full:
        argv += ["--freeze_feature_encoder", str(args.freeze_feature_encoder)]
        argv += ["--mask_time_prob", str(args.mask_time_prob)]
    else:
        argv += ["--superb_lstm_size", str(args.superb_lstm_size), "--weight_decay", "0"]  # Adam, as in SUPERB
    began = time.perf_counter()
    trainer = finetune_script.main(argv)
    return trainer, time.perf_counter() - began


def summary(recipe: str, start: str, trainer, wall: float, args: LearningBenchmarkArguments) -> dict:
    """The run's model size, settings, training loss, dev CER/WER curve and wall time."""
    history = trainer.state.log_history
    full = recipe == "full"
    return {
        "recipe": recipe,
        "start": start,
        "parameters": trainer.model.num_parameters(),
        "encoder_parameters": trainer.model.alhubert.num_parameters(),
        "steps": args.max_steps if full else args.superb_max_steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate if full else args.superb_learning_rate,
        "threads": torch.get_num_threads(),
        "wall_seconds": round(wall, 1),
        "train_loss": [
            {"step": entry["step"], "loss": round(entry["loss"], 3)} for entry in history if "loss" in entry
        ],
        "dev_curve": [
            {"step": entry["step"], "cer": round(entry["eval_cer"], 4), "wer": round(entry["eval_wer"], 4)}
            for entry in history
            if "eval_cer" in entry
        ],
    }


def main():
    (args,) = HfArgumentParser(LearningBenchmarkArguments).parse_args_into_dataclasses()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    finetune_script = load_finetune_script()
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        start = description = args.model_name_or_path
        if start is None:
            start = random_student(os.path.join(workdir, "student"), args)
            description = (
                f"random student: {args.num_hidden_layers} applications of {args.num_hidden_groups} shared layers, "
                f"hidden {args.hidden_size}, {args.num_attention_heads} heads, conv {args.conv_channels} channels"
            )
        if args.recipe == "superb" and args.model_name_or_path is None and args.superb_upstream == "finetuned":
            trainer, wall = finetune(finetune_script, "full", start, os.path.join(workdir, "full"), args)
            results.append(summary("full", description, trainer, wall, args))
            start = os.path.join(workdir, "upstream")
            trainer.model.alhubert.save_pretrained(start)  # the fine-tuned encoder without its CTC head
            trainer.processing_class.feature_extractor.save_pretrained(start)
            description = f"encoder of the full-recipe run above ({description})"
        output_dir = args.output_dir or os.path.join(workdir, "finetuned")
        trainer, wall = finetune(finetune_script, args.recipe, start, output_dir, args)
        results.append(summary(args.recipe, description, trainer, wall, args))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
