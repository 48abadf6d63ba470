#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Host overhead: the time one forward spends in Python and operator dispatch, ALHuBERT against HubertModel.

    python benchmarks/host_overhead.py [--device cpu] [--rounds 21] [--calls 100]

Small batches on a GPU are launch-bound: the GPU waits for the Python code that issues its kernels, so a model is
only as fast as its forward's host code. This script times both models at their real depth (ALHuBERT small: 2
distinct layers applied 12 times; HuBERT Base: 12 layers) but with tiny widths (32 channels) on 0.1 s of audio,
where the arithmetic is negligible and the host code is most of the time. On CPU, `alhubert-small-plain` (HuBERT's
arithmetic, the code that runs on a GPU) against `hubert-base` isolates ALHuBERT's own host code (`alhubert-small`
adds the CPU fast path's extra small operators); with `--device cuda` it is the launch-bound GPU time itself.
Rounds are interleaved; the ratio is the median of the per-round ratios. Prints a Markdown table with the machine's
load average (time only on a quiet machine).
"""

import argparse
import copy
import os
import statistics
import sys

import torch
from inference import timed, tiny_config
from transformers import HubertConfig, HubertModel

from alhubert import AlHubertConfig, AlHubertModel


def tiny_widths(config):
    """`config` with inference.py's tiny widths (32 channels in the layers), its depth and layer sharing unchanged."""
    depth, groups = config.num_hidden_layers, getattr(config, "num_hidden_groups", None)
    config = tiny_config(config)
    config.num_hidden_layers = depth
    if groups is not None:
        config.num_hidden_groups = groups
    return config


def build_models(device: str, dtype: torch.dtype) -> dict:
    """ALHuBERT as shipped, ALHuBERT with HuBERT's arithmetic (the code a GPU runs; CPU only, where the fast path
    applies) and HubertModel."""
    alhubert = AlHubertModel(tiny_widths(AlHubertConfig.from_preset("small"))).eval().to(device, dtype)
    models = {"alhubert-small": alhubert}
    if device == "cpu":
        models["alhubert-small-plain"] = copy.deepcopy(alhubert)
        models["alhubert-small-plain"].set_fast_cpu_path(False)
    models["hubert-base"] = HubertModel(tiny_widths(HubertConfig())).eval().to(device, dtype)
    return models


def per_call_seconds(model, audio, calls: int) -> float:
    def run():
        for _ in range(calls):
            model(audio)

    return timed(run, audio.device.type) / calls


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="Where to run (default: cpu).")
    parser.add_argument(
        "--dtype", default="float32", choices=("float32", "bfloat16"), help="Weights and input (default: float32)."
    )
    parser.add_argument("--rounds", type=int, default=21, help="Interleaved timing rounds (default: 21).")
    parser.add_argument("--calls", type=int, default=100, help="Forward calls per model and round (default: 100).")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1).")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        sys.exit(f"--rounds and --calls must be at least 1, got {args.rounds} and {args.calls}; give positive counts.")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda was given but torch sees no CUDA GPU; use --device cpu.")
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    models = build_models(args.device, dtype)
    audio = torch.randn(1, 1600).to(args.device, dtype)
    seconds = {name: [] for name in models}
    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    with torch.inference_mode():
        for model in models.values():
            per_call_seconds(model, audio, max(1, args.calls // 2))  # warm-up
        for _ in range(args.rounds):
            for name, model in models.items():
                seconds[name].append(per_call_seconds(model, audio, args.calls))
    reference = seconds["hubert-base"]
    print(f"| model ({args.device}, {args.dtype}) | median us per forward | x hubert-base time |\n|---|---:|---:|")
    for name, times in seconds.items():
        ratio = statistics.median(own / base for own, base in zip(times, reference))
        print(f"| {name} | {statistics.median(times) * 1e6:.0f} | {ratio:.3f} |")
    print(f"load average at end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return seconds


if __name__ == "__main__":
    main()
