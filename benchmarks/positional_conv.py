#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""HuBERT's positional convolution alone (768 channels, 16 groups, kernel 128) in each formulation, per length.

    python benchmarks/positional_conv.py [--device cuda] [--frames 100 500 1500] [--batch_sizes 1 16]

On the first lent H200 a native bf16 forward took 15 ms at batch 1 x 10 s (500 frames) against 7.5 ms at 16 x 2 s
(100 frames) and 7.4 ms in float32: something in bf16 costs about 8 ms once the sequence reaches 500 frames, whatever
the batch, and bf16 autocast (which runs convolutions in bf16) shows it too. The grouped convolution with its
128-tap kernel is the prime suspect. This script times that module alone, so one short GPU run can tell which
formulation to use there:

- `conv-fp32`, `conv-bf16`: HuBERT's module (weight norm, cuDNN or oneDNN `conv1d`, GELU) in float32 / bf16;
- `conv-bf16-cudnn-benchmark`: the same with `torch.backends.cudnn.benchmark` (cuDNN times its algorithms first);
- `matmul-bf16`: the fast path's formulation (`grouped_conv_on_frames`: one batched matmul per group on the
  windows of the input, float32 accumulation), as the CPU runs it.

Prints median milliseconds per call and each variant's cosine to `conv-fp32` (same weights), with the load average.
"""

import argparse
import os
import statistics
import sys

import torch
from inference import timed
from transformers import HubertConfig
from transformers.models.hubert.modeling_hubert import HubertPositionalConvEmbedding

from alhubert.models.fast_cpu_path import grouped_conv_on_frames


VARIANTS = ("conv-fp32", "conv-bf16", "conv-bf16-cudnn-benchmark", "matmul-bf16")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="Where to run (default: cpu).")
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 500, 1500], help="Sequence lengths (frames).")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16], help="Batch sizes (default: 1 16).")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="Formulations.")
    parser.add_argument("--repeats", type=int, default=20, help="Timed calls per cell, after 3 warm-up calls.")
    parser.add_argument("--hidden_size", type=int, default=768, help="Channels (HuBERT Base: 768).")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's).")
    return parser


def make_call(variant: str, modules: dict, hidden: torch.Tensor):
    """A no-argument function that runs `variant` on `hidden` (float32) and returns float32 output."""
    if variant == "conv-fp32":
        return lambda: modules[torch.float32](hidden)
    module = modules[torch.bfloat16]
    bf16 = hidden.to(torch.bfloat16)
    if variant.startswith("conv-bf16"):
        return lambda: module(bf16)
    conv = module.conv
    return lambda: module.activation(
        grouped_conv_on_frames(bf16, conv.weight, conv.bias, conv.padding[0], conv.groups)
    )


def time_call(call, repeats: int, device: str) -> float:
    for _ in range(3):
        call()
    return statistics.median(timed(call, device) for _ in range(repeats))


def main(argv=None) -> list[dict]:
    args = build_parser().parse_args(argv)
    if min(args.frames + args.batch_sizes) < 1 or args.repeats < 1:
        sys.exit("--frames, --batch_sizes and --repeats must be positive; give counts of at least 1.")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda was given but torch sees no CUDA GPU; use --device cpu.")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = HubertConfig(hidden_size=args.hidden_size, num_attention_heads=args.hidden_size // 64 or 1)
    reference = HubertPositionalConvEmbedding(config).eval().to(args.device)
    modules = {torch.float32: reference, torch.bfloat16: HubertPositionalConvEmbedding(config).eval()}
    modules[torch.bfloat16].load_state_dict(reference.state_dict())
    modules[torch.bfloat16].to(args.device, torch.bfloat16)
    rows = []
    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    with torch.inference_mode():
        for batch_size in args.batch_sizes:
            for frames in args.frames:
                hidden = torch.randn(batch_size, frames, args.hidden_size, device=args.device)
                expected = reference(hidden).flatten().float()
                for variant in args.variants:
                    torch.backends.cudnn.benchmark = variant.endswith("cudnn-benchmark")
                    call = make_call(variant, modules, hidden)
                    seconds = time_call(call, args.repeats, args.device)
                    cosine = torch.nn.functional.cosine_similarity(call().flatten().float(), expected, dim=0).item()
                    rows.append(
                        {
                            "variant": variant,
                            "batch_size": batch_size,
                            "frames": frames,
                            "ms": 1e3 * seconds,
                            "cosine_to_fp32": cosine,
                        }
                    )
    torch.backends.cudnn.benchmark = False
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"HuBERT positional convolution, {args.hidden_size} channels, {where}: median ms per call")
    print("| variant | batch | frames | ms | cosine to conv-fp32 |\n|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['batch_size']} | {row['frames']} | {row['ms']:.3f} | "
            f"{row['cosine_to_fp32']:.6f} |"
        )
    print(f"load average at end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return rows


if __name__ == "__main__":
    main()
