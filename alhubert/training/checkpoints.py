# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Which `checkpoint-N` folder a run can resume from: the newest COMPLETE one.

`Trainer._save_checkpoint` writes, in this order: the model (`model.safetensors` and `config.json`; sharded weights
have an index file; FSDP / DeepSpeed write their own folders), then, unless `save_only_model`, `optimizer.pt`,
`scheduler.pt` (and `scaler.pt`, `rng_state*.pth`), and LAST `trainer_state.json`. A run killed while saving leaves a
checkpoint without `trainer_state.json` or with a torn one. A checkpoint is complete here when it has:

- readable model weights (a safetensors file whose header parses, or an index / pickled weights file, or an FSDP /
  DeepSpeed weights folder);
- a `trainer_state.json` that parses, with its `global_step`;
- unless the run saves only the model: `optimizer.pt` and `scheduler.pt` (or a DeepSpeed folder, which holds both).
"""

import json
import logging
import re
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


logger = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_problems(checkpoint, save_only_model: bool = False) -> list[str]:
    """What makes `checkpoint` incomplete (empty when it is complete)."""
    checkpoint = Path(checkpoint)
    problems = []
    framework_folders = [path.name for path in checkpoint.glob("*") if path.is_dir()
                         and path.name.startswith(("pytorch_model_fsdp", "global_step"))]
    safetensors = checkpoint / "model.safetensors"
    if safetensors.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(safetensors), framework="pt") as weights:
                weights.keys()
        except Exception as error:  # a torn file: the header does not parse or does not cover the file
            problems.append(f"model.safetensors is unreadable ({' '.join(str(error).split())})")
    elif not any((checkpoint / name).is_file() for name in _WEIGHT_FILES) and not framework_folders:
        problems.append("no model weights (model.safetensors)")
    state = checkpoint / "trainer_state.json"
    if not state.is_file():
        problems.append("no trainer_state.json (written last: the save was interrupted)")
    else:
        try:
            if "global_step" not in json.loads(state.read_text()):
                problems.append("trainer_state.json has no global_step")
        except (ValueError, OSError):
            problems.append("trainer_state.json is torn (not valid JSON)")
    if not save_only_model and not any(name.startswith("global_step") for name in framework_folders):
        problems += [f"no {name}" for name in ("optimizer.pt", "scheduler.pt") if not (checkpoint / name).is_file()]
    return problems


def last_complete_checkpoint(output_dir, save_only_model: bool = False) -> str | None:
    """The newest (highest step) complete `checkpoint-N` in `output_dir`, or None when there is no checkpoint.

    Newer incomplete checkpoints are skipped with a warning saying why; `FileNotFoundError` when checkpoints exist but
    none is complete.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    checkpoints = sorted(
        (int(match[1]), path) for path in output_dir.iterdir()
        if path.is_dir() and (match := _CHECKPOINT.match(path.name))
    )
    skipped = []
    for _, path in reversed(checkpoints):
        problems = checkpoint_problems(path, save_only_model=save_only_model)
        if not problems:
            for newer, why in skipped:
                logger.warning(f"Skipping {newer}: it is incomplete ({why}), probably interrupted while saving.")
            logger.info(f"Resuming from {path}: the newest complete checkpoint.")
            return str(path)
        skipped.append((path.name, "; ".join(problems)))
    if skipped:
        raise FileNotFoundError(
            f"No complete checkpoint in {output_dir}: "
            + "; ".join(f"{name}: {why}" for name, why in skipped)
            + ". Start a new run (another --output_dir) or restore a checkpoint."
        )
    return None


__all__ = ["checkpoint_problems", "last_complete_checkpoint"]
