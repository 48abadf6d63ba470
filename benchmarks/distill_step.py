#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Seconds per distillation optimizer step and peak memory: the small preset student (2 distinct layers x 12) and a
HuBERT-Base-shaped teacher with random weights, batches of 2 x 5 s, through `DistillationTrainer`.

    python benchmarks/distill_step.py                 # CPU, float32 teacher; plus CUDA bf16 when a GPU is present
    python benchmarks/distill_step.py --steps 5 --devices cpu --bf16 --teacher_dtype bfloat16
    python benchmarks/distill_step.py --compare --devices cpu   # vs the plain HubertModel reference, interleaved
    python benchmarks/distill_step.py --compare_teachers --devices cpu   # plain vs fast-path teacher
    python benchmarks/distill_step.py --profile --devices cpu   # torch.profiler table of one Trainer step
"""

import argparse
import copy
import resource
import shutil
import statistics
import tempfile
import time

import torch
from datasets import Dataset
from torch import nn
from transformers import HubertConfig, HubertModel, TrainerCallback, Wav2Vec2FeatureExtractor
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import logging

from alhubert.training.arguments import DistillationConfig
from alhubert.training.distillation import DistillationTrainer, GradMultiply, distillation_loss
from alhubert.training.student_init import init_student_from_teacher
from alhubert.training.teacher_cache import UTTERANCE_KEYS


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


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

    collate.max_length_samples = 0  # clips are never cropped (what the teacher cache checks)
    return teacher, student, clips, collate


def training_arguments(
    output_dir: str,
    device: str,
    batch_size: int,
    max_steps: int,
    bf16: bool = False,
    optim: str = "adamw_torch",
    **distillation,
) -> DistillationConfig:
    """The distillation recipe's optimizer settings (and `distillation`'s settings)."""
    use_cuda = device == "cuda"
    return DistillationConfig(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        max_steps=max_steps,
        learning_rate=2e-4,
        adam_beta2=0.98,
        adam_epsilon=1e-6,
        weight_decay=1e-6,
        max_grad_norm=5.0,
        use_cpu=not use_cuda,
        bf16=bf16,
        save_strategy="no",
        report_to="none",
        logging_steps=1000,
        disable_tqdm=True,
        dataloader_pin_memory=use_cuda,
        optim=optim,
        **distillation,
    )


def benchmark(
    device: str,
    steps: int,
    warmup: int,
    batch_size: int,
    seconds: float,
    bf16: bool = False,
    teacher_dtype: torch.dtype = torch.float32,
    optim: str = "adamw_torch",
) -> dict:
    """Run `warmup + steps` optimizer steps and return the mean step time of the last `steps` and peak memory."""
    teacher, student, clips, collate = setup(batch_size, seconds, steps + warmup)
    use_cuda = device == "cuda"
    with tempfile.TemporaryDirectory() as output_dir:
        args = training_arguments(output_dir, device, batch_size, steps + warmup, bf16=bf16, optim=optim)
        timer = StepTimer()
        trainer = DistillationTrainer(
            model=student,
            args=args,
            teacher=teacher,
            teacher_dtype=teacher_dtype,
            train_dataset=Dataset.from_dict({"audio": clips}),
            data_collator=collate,
            callbacks=[timer],
        )
        if use_cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
    measured = timer.durations[warmup:]
    result = {
        "device": torch.cuda.get_device_name() if use_cuda else f"cpu ({torch.get_num_threads()} threads)",
        "precision": f"{'bf16 autocast' if bf16 else 'fp32'} student, {str(teacher_dtype)[6:]} teacher, {optim}",
        "seconds_per_step": sum(measured) / len(measured),
        "steps_measured": len(measured),
    }
    if use_cuda:
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        result["peak_process_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


class ReferenceStudent(nn.Module):
    """The plain PyTorch reference: the original code's arithmetic built from `transformers.HubertModel` modules.

    HuBERT's conv front end (gradient scaled by `feature_grad_mult`, fairseq's GradMultiply), feature projection,
    positional convolution and encoder LayerNorm, then the `num_hidden_groups` distinct `HubertEncoderLayer`s applied
    cyclically `num_hidden_layers` times; returns the hidden states after applications `student_layers` and the frame
    mask. No fast path, no elastic depth: what the original research code computes.
    """

    def __init__(self, student, student_layers, feature_grad_mult=0.1):
        super().__init__()
        config = student.config
        plain = HubertConfig(**{**config.to_dict(), "num_hidden_layers": config.num_hidden_groups})
        plain._attn_implementation = config._attn_implementation
        self.hubert = HubertModel(plain)
        missing, unexpected = self.hubert.load_state_dict(student.state_dict(), strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        self.applications = config.num_hidden_layers
        self.student_layers = list(student_layers)
        self.feature_grad_mult = feature_grad_mult

    def forward(self, input_values, attention_mask):
        hubert, encoder = self.hubert, self.hubert.encoder
        features = GradMultiply.apply(hubert.feature_extractor(input_values), self.feature_grad_mult)
        features = features.transpose(1, 2)
        frame_mask = hubert._get_feature_vector_attention_mask(features.shape[1], attention_mask)
        hidden = hubert.feature_projection(features)
        hidden = hidden.masked_fill(~frame_mask.unsqueeze(-1), 0.0)
        bias = create_bidirectional_mask(config=hubert.config, inputs_embeds=hidden, attention_mask=frame_mask)
        hidden = encoder.dropout(encoder.layer_norm(hidden + encoder.pos_conv_embed(hidden)))
        states = {}
        for application in range(self.applications):
            hidden = encoder.layers[application % len(encoder.layers)](hidden, attention_mask=bias)
            states[application + 1] = hidden
        return [states[index] for index in self.student_layers], frame_mask


def reference_step(student, teacher, optimizer, batch, layers, max_grad_norm):
    """One optimizer step of the reference: plain teacher (all hidden states) under no_grad, student, loss, AdamW."""
    input_values, attention_mask = batch["input_values"], batch["attention_mask"]
    with torch.no_grad():
        hidden_states = teacher(input_values, attention_mask=attention_mask, output_hidden_states=True).hidden_states
        targets = [hidden_states[index] for index in layers]
    states, frame_mask = student(input_values, attention_mask)
    loss = distillation_loss(states, targets, frame_mask).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    return loss


VARIANTS = {
    # name: (bf16 autocast student, teacher dtype, teacher targets from the cache, fast CPU path of the convolutions)
    "alhubert fp32": (False, torch.float32, False, True),
    "alhubert bf16": (True, torch.bfloat16, False, True),
    "alhubert bf16 + cached targets": (True, torch.bfloat16, True, True),
    "alhubert fp32 + cached targets": (False, torch.float32, True, True),
    "alhubert fp32 without fast path": (False, torch.float32, False, False),
}


def compare_with_reference(device, steps, warmup, batch_size, seconds, variants, optim, threads=None) -> dict:
    """Optimizer steps of the plain reference and of `DistillationTrainer` variants, interleaved round by round on the
    same batches from the same starting weights and dropout seeds (so that the fp32 losses must agree).

    Returns, per setting, the median seconds per step over the rounds after `warmup`, every step's loss, and the
    median over rounds of the per-round ratio reference time / setting time.
    """
    teacher, student, clips, collate = setup(batch_size, seconds, steps + warmup)
    batches = [
        collate([{"audio": clip} for clip in clips[index : index + batch_size]])
        for index in range(0, len(clips), batch_size)
    ]
    layers = DistillationConfig().student_layers
    reference = ReferenceStudent(copy.deepcopy(student), layers).to(device).train()
    reference_teacher = copy.deepcopy(teacher).to(device).eval()  # HuBERT's own arithmetic, float32
    reference_optimizer = torch.optim.AdamW(
        reference.parameters(), lr=2e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-6
    )
    runners = {}
    cache_dir = tempfile.mkdtemp(prefix="distill-step-cache-")
    for name in variants:
        bf16, teacher_dtype, cached, fast_path = VARIANTS[name]
        args = training_arguments(
            cache_dir,
            device,
            batch_size,
            len(batches),
            bf16=bf16,
            optim=optim,
            teacher_cache_dir=f"{cache_dir}/{name}" if cached else None,
            teacher_fast_path=fast_path,
        )
        own_student = copy.deepcopy(student)
        own_student.set_fast_cpu_path(fast_path)
        trainer = DistillationTrainer(
            model=own_student,
            args=args,
            teacher=copy.deepcopy(teacher),
            teacher_dtype=teacher_dtype,
            data_collator=collate,
        )
        optimizer = trainer.create_optimizer()
        model = trainer.accelerator.prepare_model(trainer.model)  # bf16: autocast around the student's forward
        if cached:  # targets stored beforehand (untimed), as after the first epoch
            for index, batch in enumerate(batches):
                batch = {**batch, UTTERANCE_KEYS: [(f"{index}-{row}", "-") for row in range(batch_size)]}
                frames = trainer.teacher._get_feat_extract_output_lengths(batch["attention_mask"].sum(-1))
                states = trainer._teacher_states(batch["input_values"].to(device), batch["attention_mask"].to(device))
                trainer.teacher_cache.store(batch[UTTERANCE_KEYS], states, frames)
            trainer.teacher_cache.flush()
        runners[name] = (trainer, optimizer, model, cached)
    settings = ["plain reference", *variants]
    durations = {name: [] for name in settings}
    losses = {name: [] for name in settings}
    for step, batch in enumerate(batches):
        order = settings if step % 2 == 0 else settings[::-1]  # alternate who goes first
        for name in order:
            torch.manual_seed(step)  # same dropout masks for every setting
            _sync(device)
            start = time.perf_counter()
            if name == "plain reference":
                inputs = {key: value.to(device) for key, value in batch.items()}
                loss = reference_step(reference, reference_teacher, reference_optimizer, inputs, layers, 5.0)
            else:
                trainer, optimizer, model, cached = runners[name]
                inputs = dict(batch)
                if cached:
                    inputs[UTTERANCE_KEYS] = [(f"{step}-{row}", "-") for row in range(batch_size)]
                inputs = trainer._prepare_inputs(inputs)
                model.train()
                loss = trainer.compute_loss(model, inputs)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            losses[name].append(loss.item())  # syncs: the step is complete when the clock stops
            durations[name].append(time.perf_counter() - start)
    shutil.rmtree(cache_dir, ignore_errors=True)
    results = {}
    for name in settings:
        ratios = [ref / own for ref, own in zip(durations["plain reference"][warmup:], durations[name][warmup:])]
        results[name] = {
            "seconds_per_step": statistics.median(durations[name][warmup:]),
            "losses": losses[name],
            "speed_up": statistics.median(ratios),
            "round_speed_ups": ratios,
        }
    return results


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def profile_step(device, batch_size, seconds, bf16, teacher_dtype, optim, rows=25) -> str:
    """`torch.profiler` table (self CPU time) of one `Trainer` optimizer step after one warm-up step."""
    from torch.profiler import ProfilerActivity, profile

    teacher, student, clips, collate = setup(batch_size, seconds, 2)
    with tempfile.TemporaryDirectory() as output_dir:
        args = training_arguments(output_dir, device, batch_size, 2, bf16=bf16, optim=optim)

        class Profile(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step == 1:
                    self.profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=False)
                    self.profiler.__enter__()

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == 2:
                    self.profiler.__exit__(None, None, None)

        callback = Profile()
        trainer = DistillationTrainer(
            model=student,
            args=args,
            teacher=teacher,
            teacher_dtype=teacher_dtype,
            train_dataset=Dataset.from_dict({"audio": clips}),
            data_collator=collate,
            callbacks=[callback],
        )
        trainer.train()
    return callback.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


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
                model=copy.deepcopy(student),
                args=training_arguments(output_dir, device, batch_size, len(batches), teacher_fast_path=fast_path),
                teacher=teacher,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="Optimizer steps measured (after the warm-up steps).")
    parser.add_argument("--warmup", type=int, default=1, help="Optimizer steps run first and not measured.")
    parser.add_argument("--batch_size", type=int, default=2, help="Clips per batch.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each clip in seconds (16 kHz).")
    parser.add_argument(
        "--devices",
        nargs="+",
        default=["cpu", "cuda"],
        choices=["cpu", "cuda"],
        help="Devices to benchmark; cuda is skipped when no GPU is available.",
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="Plain run and --profile: bf16 autocast for the student (TrainingArguments.bf16).",
    )
    parser.add_argument(
        "--teacher_dtype",
        choices=list(DTYPES),
        default="float32",
        help="Plain run and --profile: the teacher's dtype.",
    )
    parser.add_argument("--optim", default="adamw_torch", help="TrainingArguments.optim of the ALHuBERT runs.")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="Interleave optimizer steps of a plain PyTorch reference built from HubertModel modules "
        "(the original's arithmetic) with DistillationTrainer steps (--variants), on the same "
        "batches from the same weights; print median s/step, per-round speed-ups and losses.",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=["alhubert fp32", "alhubert bf16", "alhubert bf16 + cached targets"],
        help="DistillationTrainer settings timed against the reference by --compare.",
    )
    parser.add_argument(
        "--compare_teachers",
        action="store_true",
        help="Interleave steps with the plain HubertModel teacher and with the fast-path teacher.",
    )
    parser.add_argument("--profile", action="store_true", help="Print a torch.profiler table of one Trainer step.")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: torch's; 1 is faster on a shared, oversubscribed CPU).",
    )
    return parser


def main():
    args = build_parser().parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.set_verbosity_error()
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU available, skipped")
            continue
        where = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        if args.profile:
            print(
                profile_step(device, args.batch_size, args.seconds, args.bf16, DTYPES[args.teacher_dtype], args.optim)
            )
            continue
        if args.compare:
            results = compare_with_reference(
                device, args.steps, args.warmup, args.batch_size, args.seconds, args.variants, args.optim
            )
            print(
                f"{where}, batch {args.batch_size} x {args.seconds:g} s, {args.optim}, median of {args.steps} "
                f"interleaved rounds:"
            )
            reference_losses = results["plain reference"]["losses"]
            for name, result in results.items():
                losses = ", ".join(f"{loss:.5f}" for loss in result["losses"])
                rounds = ", ".join(f"{ratio:.2f}" for ratio in result["round_speed_ups"])
                difference = max(abs(a - b) for a, b in zip(reference_losses, result["losses"]))
                print(
                    f"  {name}: {result['seconds_per_step']:.3f} s/step, x{result['speed_up']:.3f} the reference "
                    f"(rounds {rounds}); losses {losses}; max |loss - reference| {difference:.2e}"
                )
            continue
        if args.compare_teachers:
            results = compare_teachers(device, args.steps, args.warmup, args.batch_size, args.seconds)
            plain, fast = results["plain teacher"], results["fast-path teacher"]
            print(f"{device}, batch {args.batch_size} x {args.seconds:g} s, median of {args.steps} interleaved steps:")
            for name, result in results.items():
                losses = ", ".join(f"{loss:.6f}" for loss in result["losses"])
                print(f"  {name}: {result['seconds_per_step']:.3f} s/step; losses {losses}")
            difference = max(abs(a - b) for a, b in zip(plain["losses"], fast["losses"]))
            print(
                f"  speed-up {plain['seconds_per_step'] / fast['seconds_per_step']:.3f}x; "
                f"max loss difference {difference:.2e}"
            )
            continue
        bf16 = args.bf16 or device == "cuda"
        teacher_dtype = torch.bfloat16 if device == "cuda" else DTYPES[args.teacher_dtype]
        result = benchmark(
            device,
            args.steps,
            args.warmup,
            args.batch_size,
            args.seconds,
            bf16=bf16,
            teacher_dtype=teacher_dtype,
            optim=args.optim,
        )
        memory = {key: f"{value:.2f}" for key, value in result.items() if key.startswith("peak")}
        print(
            f"{result['device']} [{result['precision']}], small preset student, HuBERT-Base-shaped teacher, batch "
            f"{args.batch_size} x {args.seconds:g} s: {result['seconds_per_step']:.3f} s/step over "
            f"{result['steps_measured']} steps; " + ", ".join(f"{key} {value}" for key, value in memory.items())
        )


if __name__ == "__main__":
    main()
