#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Convert an original DistilALHuBERT checkpoint (S3PRL `.ckpt`) into a Transformers model directory.

    alhubert convert --checkpoint small.ckpt --output_dir alhubert-small   # or scripts/convert_original_checkpoint.py

The directory loads with `AutoModel.from_pretrained(DIR)` (with `import alhubert`, or `trust_remote_code=True`
without the package) and reproduces the original model's outputs.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import transformers
from transformers import HfArgumentParser


logger = logging.getLogger(__name__)


@dataclass
class ConversionArguments:
    """What to convert and where to write it."""

    checkpoint: str = field(metadata={"help": "Original DistilALHuBERT checkpoint file (e.g. small.ckpt)."})
    output_dir: str = field(metadata={"help": "Directory for the converted model (created; must be new or empty)."})
    push_to_hub: str | None = field(
        default=None, metadata={"help": "Also upload the converted model to this Hub repository id (user/name)."}
    )
    trust_checkpoint: bool = field(
        default=False,
        metadata={
            "help": "Load the checkpoint with weights_only=False even if it pickles objects other than tensors and "
            "argparse.Namespace. This can run code from the file: only for files from a trusted source."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a non-empty output_dir that holds a model (the flag of every command)."},
    )


def main(args: list[str] | None = None) -> Path:
    (arguments,) = HfArgumentParser(ConversionArguments).parse_args_into_dataclasses(args=args)
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
        level=logging.INFO,
    )
    transformers.utils.logging.set_verbosity_info()
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()

    from alhubert.original.conversion import convert_original_checkpoint  # torch and the model code: not for --help

    logger.info(f"Converting {arguments.checkpoint} -> {arguments.output_dir}")
    output_dir = convert_original_checkpoint(
        arguments.checkpoint,
        arguments.output_dir,
        trust_checkpoint=arguments.trust_checkpoint,
        push_to_hub=arguments.push_to_hub,
        overwrite=arguments.overwrite_output_dir,
    )
    logger.info(f"Done: load it with AutoModel.from_pretrained({str(output_dir)!r}) after `import alhubert`.")
    return output_dir


def cli(args: list[str] | None = None) -> Path:
    """`main` with bad input (missing or refused checkpoint, existing or unwritable output) reported as one
    `error: ...` line on stderr and exit code 1 (`SystemExit`)."""
    try:
        return main(args)
    except (OSError, ValueError) as error:  # the message says what is wrong and what to do
        print(f"error: {' '.join(str(error).split()) or type(error).__name__}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
