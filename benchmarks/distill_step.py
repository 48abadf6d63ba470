#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Seconds per distillation optimizer step and peak memory: the small preset student (2 distinct layers x 12) and a
HuBERT-Base-shaped teacher with random weights, batches of 2 x 5 s, through `DistillationTrainer`.

    python benchmarks/distill_step.py                 # CPU, float32 teacher; plus CUDA bf16 when a GPU is present
    python benchmarks/distill_step.py --steps 5 --devices cpu
    python benchmarks/distill_step.py --compare --devices cpu   # plain vs fast-path teacher, interleaved, same batches
"""

import argparse
import copy
import resource
import statistics
import tempfile
import time

import torch
from datasets import Dataset
from transformers import HubertConfig, HubertModel, TrainerCallback, TrainingArguments, Wav2Vec2FeatureExtractor
from transformers.utils import logging

from alhubert.training.distillation import DistillationArguments, DistillationTrainer
from alhubert.training.student_init import init_student_from_teacher


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


def setup(batch_size: int, seconds: float, num_batches: int):
    """A HuBERT-Base-shaped random teacher, the small preset student initialised from it, clips and a collator."""
    torch.manual_seed(0)
    teacher = HubertModel(HubertConfig(layerdrop=0.0, mask_time_prob=0.05)).eval()  # HuBERT Base shape, random
    student = init_student_from_teacher(teacher, num_hidden_groups=2, num_hidden_layers=12)
    samples = int(16000 * seconds)
    clips = [torch.randn(samples).numpy() for _ in range(batch_size * num_batches)]
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)

    def collate(rows):
        return extractor([row["audio"] for row in rows], sampling_rate=16000, padding=True, return_tensors="pt")

    return teacher, student, clips, collate


def training_arguments(output_dir: str, device: str, batch_size: int, max_steps: int) -> TrainingArguments:
    """The distillation recipe's optimizer settings."""
    use_cuda = device == "cuda"
    return TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=max_steps,
        learning_rate=2e-4, adam_beta2=0.98, adam_epsilon=1e-6, weight_decay=1e-6, max_grad_norm=5.0,
        use_cpu=not use_cuda, bf16=use_cuda, save_strategy="no", report_to="none", logging_steps=1000,
        disable_tqdm=True, dataloader_pin_memory=use_cuda,
    )


def benchmark(device: str, steps: int, warmup: int, batch_size: int, seconds: float) -> dict:
    """Run `warmup + steps` optimizer steps and return the mean step time of the last `steps` and peak memory."""
    teacher, student, clips, collate = setup(batch_size, seconds, steps + warmup)
    use_cuda = device == "cuda"
    with tempfile.TemporaryDirectory() as output_dir:
        args = training_arguments(output_dir, device, batch_size, steps + warmup)
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


def compare_teachers(device: str, steps: int, warmup: int, batch_size: int, seconds: float) -> dict:
    """Optimizer steps with the plain `HubertModel` teacher and with its fast-path clone, interleaved on the same
    batches from the same student weights (and the same dropout seeds), so that the losses must agree.

    Returns, per teacher setting, the median seconds per step over the last `steps` rounds and every step's loss.
    """
    teacher, student, clips, collate = setup(batch_size, seconds, steps + warmup)
    batches = [
        collate([{"audio": clip} for clip in clips[index : index + batch_size]])
        for index in range(0, len(clips), batch_size)
    ]
    settings = {"plain teacher": False, "fast-path teacher": True}
    trainers, optimizers = {}, {}
    with tempfile.TemporaryDirectory() as output_dir:
        for name, fast_path in settings.items():
            trainers[name] = DistillationTrainer(
                model=copy.deepcopy(student), args=training_arguments(output_dir, device, batch_size, len(batches)),
                teacher=teacher, distillation_args=DistillationArguments(teacher_fast_path=fast_path),
                teacher_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
            )
            optimizers[name] = trainers[name].create_optimizer()
    durations = {name: [] for name in settings}
    losses = {name: [] for name in settings}
    for step, batch in enumerate(batches):
        order = list(settings) if step % 2 == 0 else list(settings)[::-1]  # alternate who goes first
        for name in order:
            trainer, optimizer = trainers[name], optimizers[name]
            inputs = trainer._prepare_inputs(batch)
            trainer.model.train()
            torch.manual_seed(step)  # same dropout masks for both settings
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with trainer.autocast_smart_context_manager():
                loss = trainer.compute_loss(trainer.model, inputs)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
            losses[name].append(loss.item())  # syncs: the step is complete when the clock stops
            durations[name].append(time.perf_counter() - start)
    return {
        name: {"seconds_per_step": statistics.median(durations[name][warmup:]), "losses": losses[name]}
        for name in settings
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="Optimizer steps measured (after the warm-up steps).")
    parser.add_argument("--warmup", type=int, default=1, help="Optimizer steps run first and not measured.")
    parser.add_argument("--batch_size", type=int, default=2, help="Clips per batch.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each clip in seconds (16 kHz).")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"],
                        help="Devices to benchmark; cuda is skipped when no GPU is available.")
    parser.add_argument("--compare", action="store_true",
                        help="Interleave steps with the plain HubertModel teacher and with its ALHuBERT fast-path "
                             "clone (same batches and starting weights); print the median s/step and the losses.")
    args = parser.parse_args()
    logging.set_verbosity_error()
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU available, skipped")
            continue
        if args.compare:
            results = compare_teachers(device, args.steps, args.warmup, args.batch_size, args.seconds)
            plain, fast = results["plain teacher"], results["fast-path teacher"]
            print(f"{device}, batch {args.batch_size} x {args.seconds:g} s, median of {args.steps} interleaved steps:")
            for name, result in results.items():
                losses = ", ".join(f"{loss:.6f}" for loss in result["losses"])
                print(f"  {name}: {result['seconds_per_step']:.3f} s/step; losses {losses}")
            difference = max(abs(a - b) for a, b in zip(plain["losses"], fast["losses"]))
            print(f"  speed-up {plain['seconds_per_step'] / fast['seconds_per_step']:.3f}x; "
                  f"max loss difference {difference:.2e}")
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
