#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Chunked long-audio feature extraction: how close to one pass, and how much memory for long recordings.

`--mode compare` extracts `last_hidden_state` of `--duration_s` seconds of speech in one pass and in overlapping
windows (alhubert.inference.long_audio) and prints the difference. `--mode memory` extracts `--duration_s` seconds
in windows and prints the peak resident memory of the process (run it in a fresh process per measurement). The
model is a preset with random weights; `--hidden_size`/`--conv_dim` shrink it (same layer structure) to make an
hour of audio affordable on a CPU. The audio is English speech synthesised with espeak-ng, repeated to the duration.

    python benchmarks/long_audio.py --mode compare --duration_s 60
    python benchmarks/long_audio.py --mode memory --duration_s 3600 --hidden_size 64 --conv_dim 32
"""

import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser

from alhubert import AlHubertConfig, AlHubertModel, default_feature_extractor
from alhubert.inference.long_audio import extract_long_features
from alhubert.models.audio import load_audio


logger = logging.getLogger(__name__)

TEXT = (
    "Self supervised speech models learn from untranscribed audio. A small student with shared layers is trained to "
    "reproduce the hidden states of a large teacher, layer by layer, on many hours of read English speech. "
)


@dataclass
class BenchmarkArguments:
    mode: str = field(default="compare", metadata={"help": "'compare' (chunked vs one pass) or 'memory' (peak RSS)."})
    preset: str = field(default="small", metadata={"help": "Preset whose layer structure the model has."})
    hidden_size: int | None = field(default=None, metadata={"help": "Shrink the encoder width (heads: hidden/16)."})
    conv_dim: int | None = field(default=None, metadata={"help": "Shrink the convolution channels."})
    duration_s: float = field(default=60.0, metadata={"help": "Seconds of audio."})
    chunk_length_s: float = field(
        default=30.0, metadata={"help": "Window length (see alhubert.inference.long_audio)."}
    )
    stride_length_s: float = field(default=5.0, metadata={"help": "Context dropped on each side of a window."})
    batch_size: int = field(default=1, metadata={"help": "Windows per forward pass."})
    threads: int = field(default=2, metadata={"help": "torch CPU threads."})


def speech(duration_s: float, sampling_rate: int = 16000) -> np.ndarray:
    """espeak-ng speech repeated (with a little noise, so no two repeats are equal) to `duration_s` seconds."""
    if shutil.which("espeak-ng") is None:
        sys.exit(
            "error: espeak-ng not found: install it ('make benchmark-long-audio' does, or 'sudo apt-get install "
            "espeak-ng'); it synthesises the benchmark's speech."
        )
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", wav.name, TEXT * 4], check=True)
        clip = load_audio(wav.name, sampling_rate)
    repeats = int(np.ceil(duration_s * sampling_rate / len(clip)))
    audio = np.tile(clip, repeats)[: int(duration_s * sampling_rate)].copy()
    rng = np.random.default_rng(0)
    for start in range(0, len(audio), 10 * sampling_rate):  # in blocks: no hour-sized temporary
        block = audio[start : start + 10 * sampling_rate]
        block += 1e-3 * rng.standard_normal(len(block), dtype=np.float32)
    return audio


def build_model(args):
    overrides = {}
    if args.hidden_size:
        overrides.update(
            hidden_size=args.hidden_size,
            num_attention_heads=max(args.hidden_size // 16, 1),
            intermediate_size=4 * args.hidden_size,
            num_conv_pos_embedding_groups=4,
        )
    if args.conv_dim:
        overrides["conv_dim"] = (args.conv_dim,) * 7
    torch.manual_seed(0)
    config = AlHubertConfig.from_preset(args.preset, **overrides)
    return AlHubertModel(config).eval(), default_feature_extractor(config)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:  # Linux: pages
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def main():
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses()
    torch.set_num_threads(args.threads)
    model, feature_extractor = build_model(args)
    audio = speech(args.duration_s)
    parameters = sum(p.numel() for p in model.parameters())
    logger.info(
        "model: %s preset structure, hidden %d, %d parameters; audio %.0f s",
        args.preset,
        model.config.hidden_size,
        parameters,
        len(audio) / 16000,
    )
    chunking = {
        "chunk_length_s": args.chunk_length_s,
        "stride_length_s": args.stride_length_s,
        "batch_size": args.batch_size,
    }
    if args.mode == "compare":
        with torch.no_grad():
            full = model(torch.from_numpy(audio)[None]).last_hidden_state[0].numpy()
        chunked = extract_long_features(model, feature_extractor, audio, **chunking)
        cosine = (full * chunked).sum(-1) / (np.linalg.norm(full, axis=-1) * np.linalg.norm(chunked, axis=-1))
        print(f"frames {len(full)}; chunk {args.chunk_length_s} s, stride {args.stride_length_s} s")
        print(
            "relative error ||chunked - full|| / ||full|| = "
            f"{np.linalg.norm(chunked - full) / np.linalg.norm(full):.3e}"
        )
        print(f"max abs difference = {np.abs(chunked - full).max():.3e} (max abs value {np.abs(full).max():.3e})")
        print(f"per-frame cosine similarity: mean {cosine.mean():.6f}, min {cosine.min():.6f}")
    elif args.mode == "memory":
        before, peak_before = current_rss_mib(), peak_rss_mib()
        start = time.perf_counter()
        features = extract_long_features(model, feature_extractor, audio, **chunking)
        seconds = time.perf_counter() - start
        print(
            f"audio {len(audio) / 16000:.0f} s ({audio.nbytes / 2**20:.0f} MiB float32) -> features {features.shape} "
            f"({features.nbytes / 2**20:.0f} MiB); {seconds:.0f} s"
        )
        print(
            f"RSS with model and audio loaded {before:.0f} MiB (peak so far {peak_before:.0f} MiB); "
            f"peak RSS after extraction {peak_rss_mib():.0f} MiB"
        )
    else:
        raise ValueError(f"--mode must be 'compare' or 'memory', got {args.mode!r}.")


if __name__ == "__main__":
    main()
