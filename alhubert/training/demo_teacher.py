# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""A tiny HuBERT-shaped teacher with RANDOM weights, created locally, for the offline demo and tests.

Real teachers (facebook/hubert-base-ls960) come from the Hugging Face Hub; this one only lets the distillation
machinery run end to end without a network. Its features mean nothing.
"""

import os
import shutil
from pathlib import Path

import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from ..utils.files import make_staging_folder, replace_folder


DEMO_TEACHER_NAME = "hubert-demo-teacher-RANDOM-WEIGHTS"
RANDOM_WEIGHTS_NOTE = "RANDOM WEIGHTS: a tiny HuBERT-shaped demo teacher, not a trained model."
DEMO_TEACHER_CONFIG = {
    "hidden_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "conv_dim": (32,) * 7,  # HuBERT's kernels and strides: 400-sample receptive field, 320x downsampling
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "mask_time_prob": 0.05,
    "layerdrop": 0.0,
    # larger than HuBERT's 0.02, so that the random layers differ enough to be worth learning
    "initializer_range": 0.1,
}


def demo_teacher_path(cache_dir: str | os.PathLike | None = None, seed: int = 0) -> str:
    """The demo teacher's model directory, created (random weights from `seed`) on first use, in `cache_dir` (default:
    `$ALHUBERT_CACHE`, else `$XDG_CACHE_HOME/alhubert`, else `~/.cache/alhubert`)."""
    cache_dir = cache_dir or os.environ.get("ALHUBERT_CACHE")
    if not cache_dir:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "alhubert"
    target = Path(cache_dir) / f"{DEMO_TEACHER_NAME}-seed{seed}"
    if (target / "model.safetensors").is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = HubertConfig(**DEMO_TEACHER_CONFIG, demo_note=RANDOM_WEIGHTS_NOTE)
    model = HubertModel(config)
    staging = make_staging_folder(target)
    try:
        model.save_pretrained(staging)
        if not (staging / "model.safetensors").is_file():  # Transformers writes weights on distributed rank 0 only
            raise RuntimeError(
                "The demo teacher can only be created by the main process; create it there first (e.g. inside "
                "`TrainingArguments.main_process_first()`)."
            )
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(staging)
        (staging / "README.md").write_text(f"# {DEMO_TEACHER_NAME}\n\n{RANDOM_WEIGHTS_NOTE}\n")
        replace_folder(staging, target, keep_existing=True)  # another process may have won the race
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not (target / "model.safetensors").is_file():
        raise FileExistsError(f"{target} exists but holds no demo teacher; delete it and run again.")
    return str(target)


__all__ = ["DEMO_TEACHER_CONFIG", "RANDOM_WEIGHTS_NOTE", "demo_teacher_path"]
