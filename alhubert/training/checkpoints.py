# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The output-folder policy of the training commands (`check_output_dir`), and which `checkpoint-N` folder a run
resumes from (`last_complete_checkpoint`: the newest COMPLETE one).

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
import os
import pickle
import re
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import TrainingArguments
from transformers.trainer_pt_utils import safe_globals
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from ..utils.errors import one_line
from ..utils.files import check_writable_folder
from .arguments import RESUME_LAST


logger = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_problems(checkpoint: str | os.PathLike, save_only_model: bool = False) -> list[str]:
    """What makes `checkpoint` incomplete (empty when it is complete)."""
    checkpoint = Path(checkpoint)
    problems = []
    framework_folders = [
        path.name
        for path in checkpoint.glob("*")
        if path.is_dir() and path.name.startswith(("pytorch_model_fsdp", "global_step"))
    ]
    safetensors = checkpoint / "model.safetensors"
    if safetensors.is_file():
        try:
            with safe_open(str(safetensors), framework="pt") as weights:
                weights.keys()
        except Exception as error:  # a torn file: the header does not parse or does not cover the file
            problems.append(f"model.safetensors is unreadable ({one_line(error)})")
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


def last_complete_checkpoint(output_dir: str | os.PathLike, save_only_model: bool = False) -> str | None:
    """The newest (highest step) complete `checkpoint-N` in `output_dir`, or None when there is no checkpoint.

    Newer incomplete checkpoints are skipped with a warning saying why; `FileNotFoundError` when checkpoints exist but
    none is complete.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    checkpoints = sorted(
        (int(match[1]), path)
        for path in output_dir.iterdir()
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


def check_resumable(checkpoint: str | os.PathLike) -> None:
    """Refuse (`ValueError`, one line) a checkpoint that `Trainer` would load into a broken run: weights that are not
    finite, or optimizer / scheduler / RNG files holding pickled objects other than tensors (refused by
    `torch.load(weights_only=True)`: loading them could run code)."""
    checkpoint = Path(checkpoint)
    weights_files = [checkpoint / "model.safetensors", *checkpoint.glob("*/model.safetensors")]
    for weights in filter(Path.is_file, weights_files):
        with safe_open(str(weights), framework="pt") as tensors:
            for key in tensors.keys():
                tensor = tensors.get_tensor(key)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise ValueError(
                        f"{weights} holds weights that are not finite (NaN or infinity) in {key}: resuming would "
                        "train on broken weights; resume from an earlier checkpoint or start a new run."
                    )
    pickled = [checkpoint / name for name in ("optimizer.pt", "scheduler.pt", "scaler.pt")]
    for path in filter(Path.is_file, [*pickled, *checkpoint.glob("rng_state*.pth")]):
        try:
            with safe_globals():
                torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(
                f"{path} cannot be loaded safely ({reason[:200]}): it holds objects other than tensors "
                "and plain values, which are refused because loading them could run code; restore the file or start "
                "a new run."
            ) from None


def check_output_dir(training_args: TrainingArguments, overwrite_output_dir: bool, trains: bool = True) -> str | None:
    """The one output-folder policy; returns the checkpoint to resume from (None: start afresh).

    Resume only when asked (`--resume_from_checkpoint last` or a folder); refuse a non-empty folder unless
    `--overwrite_output_dir`; refuse to mix with another run's checkpoints that `--save_total_limit` would delete.
    """
    output_dir = training_args.output_dir
    resume = training_args.resume_from_checkpoint
    if not trains:
        return None
    check_writable_folder(output_dir, what="training output")
    if resume is not None:
        if resume in RESUME_LAST:
            # the newest COMPLETE checkpoint: a run killed while saving leaves a newer, half-written one
            last = last_complete_checkpoint(output_dir, save_only_model=training_args.save_only_model)
            if last is None:
                raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no checkpoint-* folder in {output_dir}.")
            check_resumable(last)
            return last
        if not os.path.isdir(resume):
            raise FileNotFoundError(f"--resume_from_checkpoint {resume} is not a directory.")
        check_resumable(resume)
        return resume
    if not (os.path.isdir(output_dir) and any(os.scandir(output_dir))):
        return None
    if not overwrite_output_dir:
        what = "checkpoints of a run" if get_last_checkpoint(output_dir) else "files"
        raise ValueError(
            f"--output_dir {output_dir} is not empty (it holds {what}); pass --resume_from_checkpoint last to "
            "continue its run, --overwrite_output_dir to write into it, or choose another folder."
        )
    if training_args.save_total_limit and get_last_checkpoint(output_dir):
        raise ValueError(
            f"--output_dir {output_dir} holds checkpoint-* folders of another run, which --save_total_limit would "
            "delete; move them, pass --save_total_limit none, or choose another folder."
        )
    return None


__all__ = ["check_output_dir", "check_resumable", "checkpoint_problems", "last_complete_checkpoint"]
