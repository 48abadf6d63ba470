#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Seconds per distillation optimizer step and peak memory: the small preset student (2 distinct layers x 12) and a
HuBERT-Base-shaped teacher with random weights, batches of 2 x 5 s, through `DistillationTrainer`.

    python benchmarks/distill_step.py                 # CPU, float32 teacher; plus CUDA bf16 when a GPU is present
    python benchmarks/distill_step.py --steps 5 --devices cpu
"""

import argparse
import resource
import tempfile
import time

import torch
from datasets import Dataset
from transformers import HubertConfig, HubertModel, TrainerCallback, TrainingArguments, Wav2Vec2FeatureExtractor
from transformers.utils import logging

from alhubert.distillation import DistillationArguments, DistillationTrainer
from alhubert.student_init import init_student_from_teacher


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (synchronising CUDA so that queued kernels are counted)."""

    def __init__(self):
        self.durations = []

    def _sync(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.durations.append(time.perf_counter() - self._start)


def benchmark(device: str, steps: int, warmup: int, batch_size: int, seconds: float) -> dict:
    """Run `warmup + steps` optimizer steps and return the mean step time of the last `steps` and peak memory."""
    torch.manual_seed(0)
    teacher = HubertModel(HubertConfig(layerdrop=0.0, mask_time_prob=0.05)).eval()  # HuBERT Base shape, random
    student = init_student_from_teacher(teacher, num_hidden_groups=2, num_hidden_layers=12)
    samples = int(16000 * seconds)
    clips = [torch.randn(samples).numpy() for _ in range(batch_size * (steps + warmup))]
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)

    def collate(rows):
        return extractor([row["audio"] for row in rows], sampling_rate=16000, padding=True, return_tensors="pt")

    use_cuda = device == "cuda"
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=steps + warmup,
            learning_rate=2e-4, adam_beta2=0.98, adam_epsilon=1e-6, weight_decay=1e-6, max_grad_norm=5.0,
            use_cpu=not use_cuda, bf16=use_cuda, save_strategy="no", report_to="none", logging_steps=1000,
            disable_tqdm=True, dataloader_pin_memory=use_cuda,
        )
        timer = StepTimer()
        trainer = DistillationTrainer(
            model=student, args=args, teacher=teacher, distillation_args=DistillationArguments(),
            teacher_dtype=torch.bfloat16 if use_cuda else torch.float32,
            train_dataset=Dataset.from_dict({"audio": clips}), data_collator=collate, callbacks=[timer],
        )
        if use_cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
    measured = timer.durations[warmup:]
    result = {
        "device": torch.cuda.get_device_name() if use_cuda else f"cpu ({torch.get_num_threads()} threads)",
        "precision": "bf16 autocast student, bf16 teacher" if use_cuda else "fp32",
        "seconds_per_step": sum(measured) / len(measured),
        "steps_measured": len(measured),
    }
    if use_cuda:
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        result["peak_process_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="Optimizer steps measured (after the warm-up steps).")
    parser.add_argument("--warmup", type=int, default=1, help="Optimizer steps run first and not measured.")
    parser.add_argument("--batch_size", type=int, default=2, help="Clips per batch.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each clip in seconds (16 kHz).")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"],
                        help="Devices to benchmark; cuda is skipped when no GPU is available.")
    args = parser.parse_args()
    logging.set_verbosity_error()
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU available, skipped")
            continue
        result = benchmark(device, args.steps, args.warmup, args.batch_size, args.seconds)
        memory = {key: f"{value:.2f}" for key, value in result.items() if key.startswith("peak")}
        print(
            f"{result['device']} [{result['precision']}], small preset student, HuBERT-Base-shaped teacher, batch "
            f"{args.batch_size} x {args.seconds:g} s: {result['seconds_per_step']:.3f} s/step over "
            f"{result['steps_measured']} steps; " + ", ".join(f"{key} {value}" for key, value in memory.items())
        )


if __name__ == "__main__":
    main()
