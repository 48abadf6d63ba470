#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Where the time of one forward pass goes: a `torch.profiler` table and a breakdown by kind of operator.

    python benchmarks/profile_inference.py --model alhubert-small --batch_size 4 --duration_s 10
    python benchmarks/profile_inference.py --model hubert-base --threads 1
    python benchmarks/profile_inference.py --model alhubert-small-bf16 --threads 1     # native bf16
    python benchmarks/profile_inference.py --model hubert-base-autocast --threads 1    # bf16 autocast
    python benchmarks/profile_inference.py --device cuda --model alhubert-small-bf16 --batch_size 1   # GPU kernels

`--model` takes benchmarks/inference.py's names and precision suffixes (`-bf16`, `-autocast`).

The breakdown sorts the profiled operators into matrix products (linear layers and the matmul convolutions),
oneDNN convolutions, attention (SDPA), GELU and the other element-wise/normalisation/copy operators, and prints the
share of time of each next to the GFLOP/s of the whole pass and of a plain matmul (in the pass's compute dtype) on
the same machine. Casts (`aten::copy_`, `aten::_to_copy`) are among "other". With `--device cuda` the times are the
GPU time of each operator's kernels (and the table adds the CUDA kernels themselves).
"""

import logging
import sys
from dataclasses import dataclass, field

import torch
from inference import (
    MODEL_NAMES,
    SAMPLING_RATE,
    InferenceBenchmarkArguments,
    Variant,
    build_model,
    forward_flops,
    matmul_seconds,
)
from torch.profiler import ProfilerActivity, profile
from transformers import HfArgumentParser


logger = logging.getLogger(__name__)

KINDS = {
    "matrix products": ("aten::addmm", "aten::mm", "aten::bmm", "aten::addmm_", "aten::baddbmm"),
    "oneDNN / cuDNN convolutions": (
        "aten::mkldnn_convolution",
        "aten::convolution_overrideable",
        "aten::cudnn_convolution",
    ),
    "attention (SDPA)": (
        "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_attention_math",
        "aten::_scaled_dot_product_flash_attention",
        "aten::_scaled_dot_product_efficient_attention",
        "aten::_scaled_dot_product_cudnn_attention",
    ),
    "GELU": ("aten::gelu", "aten::gelu_"),
    "copies and casts": ("aten::copy_", "aten::_to_copy"),
}


@dataclass
class ProfileArguments:
    model: str = field(
        default="alhubert-small", metadata={"help": f"One of {MODEL_NAMES}, optionally with -bf16 or -autocast."}
    )
    batch_size: int = field(default=4, metadata={"help": "Items per forward pass."})
    duration_s: float = field(default=10.0, metadata={"help": "Seconds of audio per item."})
    device: str = field(default="cpu", metadata={"help": "'cpu', or 'cuda' to profile the GPU kernels."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)."})
    rows: int = field(default=20, metadata={"help": "Operators shown in the table."})
    matmul_size: int = field(default=2048, metadata={"help": "Side of the square reference matmul."})
    trace: str | None = field(default=None, metadata={"help": "Also write a Chrome trace to this path."})


def main():
    (args,) = HfArgumentParser(ProfileArguments).parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    if args.device not in ("cpu", "cuda"):
        sys.exit(f"--device must be 'cpu' or 'cuda', got {args.device!r}.")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda was given but torch sees no CUDA GPU; use --device cpu.")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    settings = InferenceBenchmarkArguments(device=args.device)
    variant = Variant.parse(args.model, settings)
    if variant.runner != "eager":
        raise ValueError(f"{args.model}: only eager PyTorch models are profiled here.")
    model = build_model(variant.base).to(args.device, variant.weights_dtype())
    samples = int(args.duration_s * SAMPLING_RATE)
    inputs = torch.randn(args.batch_size, samples).to(args.device, variant.weights_dtype())
    cuda = args.device == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with torch.inference_mode(), variant.context(settings):
        model(inputs)  # warm-up
        with profile(activities=activities, record_shapes=True) as profiler:
            model(inputs)
            if cuda:
                torch.cuda.synchronize()
    if args.trace:
        profiler.export_chrome_trace(args.trace)
    averages = profiler.key_averages(group_by_input_shape=True)
    time_key = "self_device_time_total" if cuda else "self_cpu_time_total"
    print(averages.table(sort_by=time_key, row_limit=args.rows, max_name_column_width=40))

    self_times = {}
    for event in profiler.key_averages():
        if event.key.startswith("aten::") or not cuda:  # on CUDA, kernels repeat their operators' time
            self_times[event.key] = self_times.get(event.key, 0.0) + getattr(event, time_key) / 1e6
    total = sum(self_times.values())
    where = torch.cuda.get_device_name() if cuda else f"{torch.get_num_threads()} threads"
    print(f"\n{args.model}, batch {args.batch_size} x {args.duration_s:g} s, {where}")
    print(f"{'kind':<28} {'self ' + ('GPU' if cuda else 'CPU') + ' s':>10} {'share':>7}")
    remaining = total
    for kind, names in KINDS.items():
        seconds = sum(self_times.get(name, 0.0) for name in names)
        remaining -= seconds
        print(f"{kind:<28} {seconds:>10.3f} {100 * seconds / total:>6.1f}%")
    print(f"{'other (norms, adds)':<28} {remaining:>10.3f} {100 * remaining / total:>6.1f}%")
    flops = forward_flops(model.config, args.batch_size, inputs.shape[1])
    compute_dtype = variant.compute_dtype(settings)
    size = args.matmul_size
    matmul = min(matmul_seconds(size, args.device, compute_dtype) for _ in range(3))
    print(
        f"whole pass: {flops / 1e9:.0f} GFLOP in {total:.3f} s of operator time = {flops / total / 1e9:.0f} GFLOP/s; "
        f"plain {size}^3 {str(compute_dtype).removeprefix('torch.')} matmul: {2 * size**3 / matmul / 1e9:.0f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
