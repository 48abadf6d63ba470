# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""What the training commands (`alhubert distill`, `finetune-ctc`, `finetune-classification`, `pretrain-hubert`,
`kmeans-targets`) share around their `main`: parsing, one-line set-up errors, the `train` extra check, threads,
logging, the output-folder policy and the seed. Light to import (no torch)."""

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..utils.errors import one_line
from ..utils.threads import set_threads


if TYPE_CHECKING:
    from transformers import TrainingArguments

    from .arguments import OutputArguments


# modules of the `train` extra (setup.py): a command without one of them says how to install it
TRAIN_EXTRA_MODULES = ("accelerate", "datasets", "evaluate", "jiwer", "yaml", "tensorboard")


def parse_command(groups: tuple[type, ...], prog: str, usage: str, argv: list[str] | None) -> tuple:
    """The dataclasses of `groups` from `[CONFIG] [--flags]` (`sys.argv[1:]` when `argv` is None)."""
    from .arguments import ArgumentParser

    parser = ArgumentParser(groups, prog=prog, usage=usage)
    return parser.parse(sys.argv[1:] if argv is None else argv)


@contextmanager
def setup_errors() -> Iterator[None]:
    """Mark the `OSError` / `ValueError` raised inside as set-up problems (arguments, output folder, inputs, models):
    `run_command` prints them as one line. Errors during training keep their traceback."""
    try:
        yield
    except (OSError, ValueError) as error:
        error.setup_error = True
        raise


def run_command(main: Callable[[list[str]], object], argv: list[str] | None = None) -> object:
    """`main(argv)` for the command line: a set-up problem is one `error: ...` line on stderr and exit code 1, and so
    is a missing module of the `train` extra."""
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except ImportError as error:  # Transformers' Trainer raises a plain ImportError naming accelerate
        missing = (error.name or "").split(".")[0] or next(
            (name for name in TRAIN_EXTRA_MODULES if name in str(error)), None
        )
        if missing not in TRAIN_EXTRA_MODULES:
            raise
        print(
            f'error: {missing} is not installed; training needs the train extra: pip install "alhubert[train]"',
            file=sys.stderr,
        )
        sys.exit(1)
    except (OSError, ValueError) as error:
        if not getattr(error, "setup_error", False):
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(1)


def setup_logging(training_args: "TrainingArguments", logger: logging.Logger) -> None:
    """The commands' logging, as in Transformers' `examples/pytorch` (one stdout handler, the process's log level for
    `logger`, Transformers and datasets), quiet by default: no progress bars for loading and saving models or
    preparing data (the training progress bar stays, `--disable_tqdm` hides it), and no `pin_memory` warning on
    machines without an accelerator."""
    import datasets
    import torch
    import transformers

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    accelerator = torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None
    if accelerator is None and not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False


def start_run(
    training_args: "TrainingArguments", output_args: "OutputArguments", logger: logging.Logger, trains: bool = True
) -> str | None:
    """The start of a training command: logging, threads, the one output-folder policy (`check_output_dir`) and the
    seed. Returns the checkpoint to resume from (None: start afresh)."""
    from transformers import set_seed

    from .checkpoints import check_output_dir

    setup_logging(training_args, logger)
    set_threads(output_args.threads)
    checkpoint = check_output_dir(training_args, output_args.overwrite_output_dir, trains=trains)
    set_seed(training_args.seed)
    return checkpoint
