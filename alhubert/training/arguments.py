# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Command-line arguments of `alhubert distill`, `finetune-ctc` and `finetune-classification` (the shared ones and
the distillation's targets and loss): one way to read them, one output-folder policy, one way to keep runs quiet.
Light to import (no torch), so `--help` is quick.

- Arguments come from flags, or from one YAML/JSON file (a shipped recipe by name, e.g. `small`) followed by flags
  that override it. Relative paths in a user's file resolve against the file's folder (`output_dir`, data and model
  folders; a model or dataset name is only resolved when that folder exists); the shipped recipes hold no input paths
  and their `output_dir` is relative to the current directory.
- `--NAME none` (or `null`) clears an optional value, e.g. `--eval_librispeech_sets none` (`--report_to none` keeps
  Transformers' meaning: no logging integrations).
- The output folder: a non-empty `--output_dir` is refused unless `--overwrite_output_dir` (files are then replaced
  as the run writes them; nothing is deleted) or `--resume_from_checkpoint` (`last`, or a checkpoint folder).
"""

import dataclasses
import logging
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments


CONFIGS_DIR = Path(__file__).parent / "configs"
# The recipes shipped with the package, by name: `alhubert distill small` reads configs/small.yaml.
SHIPPED_CONFIGS = tuple(sorted(path.stem for path in CONFIGS_DIR.glob("*.yaml")))
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
CLEAR_VALUES = ("none", "null")
# Arguments for which "none" is a value of its own (`--report_to none`: no integrations), never a cleared one.
VALUE_NONE_IS_MEANINGFUL = ("report_to",)
# Arguments holding a local path (resolved against the config file's folder) ...
PATH_ARGUMENTS = ("output_dir", "logging_dir", "librispeech_root", "audiofolder", "cache_dir", "resume_from_checkpoint")
# ... or either a local folder or a Hub name (resolved only when the folder exists next to the file).
PATH_OR_NAME_ARGUMENTS = ("model_name_or_path", "teacher_name_or_path", "dataset_name")
RESUME_LAST = ("last", "true", "True")
SHORT_AUDIO_POLICIES = ("drop", "error")


@dataclass
class OutputArguments:
    """What may happen to an existing output folder."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Write into a non-empty --output_dir (its files are replaced as the run writes them; "
                          "nothing is deleted). Without it, a non-empty --output_dir is refused."},
    )


@dataclass
class DataArguments:
    """Where the training (and evaluation) audio comes from and how clips are filtered and cropped."""

    librispeech_root: str | None = field(
        default=None, metadata={"help": "Root of a local LibriSpeech tree (the folder holding train-clean-100/ ...)."}
    )
    librispeech_sets: str = field(
        default="train-clean-100,train-clean-360,train-other-500",
        metadata={"help": "Comma-separated LibriSpeech sets under --librispeech_root used for training."},
    )
    eval_librispeech_sets: str | None = field(
        default=None, metadata={"help": "Comma-separated LibriSpeech sets used for evaluation (e.g. dev-clean)."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "A `datasets` dataset: a Hub name, a local loading script/folder, or a save_to_disk folder."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_split_name: str = field(default="train", metadata={"help": "Split of the dataset used for training."})
    eval_split_name: str | None = field(
        default=None, metadata={"help": "Split used for evaluation (datasets or audiofolder sources)."}
    )
    validation_split_percentage: float | None = field(
        default=None,
        metadata={"help": "Without an evaluation split, hold out this percentage of the training data for evaluation."},
    )
    audiofolder: str | None = field(
        default=None,
        metadata={"help": "A folder of audio files for the `audiofolder` builder (metadata.csv with transcripts, or "
                          "one sub-folder per label)."},
    )
    audio_column_name: str = field(default="audio", metadata={"help": "Column that holds the audio."})
    text_column_name: str = field(default="text", metadata={"help": "Column that holds the transcript."})
    streaming: bool = field(
        default=False, metadata={"help": "Stream the dataset instead of downloading it (corpora larger than the disk)."}
    )
    max_length_samples: int | None = field(
        default=250000, metadata={"help": "Randomly crop longer clips to this many samples (16 kHz); 0 = no crop."}
    )
    min_length_samples: int = field(
        default=8000, metadata={"help": "Clips shorter than this many samples (16 kHz) are dropped (--short_audio)."}
    )
    short_audio: str = field(
        default="drop",
        metadata={"help": "Clips shorter than --min_length_samples: 'drop' them with a warning naming them, or "
                          "'error' to stop with an error naming the first one.", "choices": SHORT_AUDIO_POLICIES},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training examples (debugging, quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N evaluation examples (debugging, quick runs)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes used to read the audio headers (lengths) of a non-streamed dataset."}
    )

    def __post_init__(self):
        sources = [self.librispeech_root, self.dataset_name, self.audiofolder]
        if sum(source is not None for source in sources) != 1:
            raise ValueError("Give exactly one data source: --librispeech_root, --dataset_name or --audiofolder.")
        if self.short_audio not in SHORT_AUDIO_POLICIES:
            raise ValueError(f"--short_audio must be one of {SHORT_AUDIO_POLICIES}, got {self.short_audio!r}.")
        if self.validation_split_percentage is not None and not 0 < self.validation_split_percentage < 100:
            raise ValueError("--validation_split_percentage must lie strictly between 0 and 100.")


def resolve_config_file(name: str) -> Path:
    """A shipped recipe's name (`small`), or a path to a YAML/JSON file."""
    if name in SHIPPED_CONFIGS and not Path(name).exists():
        return CONFIGS_DIR / f"{name}.yaml"
    return Path(name)


def is_config_argument(argument: str) -> bool:
    return argument.endswith(CONFIG_SUFFIXES) or (argument in SHIPPED_CONFIGS and not argument.startswith("-"))


def _optional_fields(dataclass_types) -> set[str]:
    """Names of the fields whose type admits None (they can be cleared with `--NAME none`)."""
    names = set()
    for dataclass_type in dataclass_types:
        try:
            hints = typing.get_type_hints(dataclass_type)
        except Exception:  # unresolvable annotations: fall back to the defaults
            hints = {}
        for item in dataclasses.fields(dataclass_type):
            if item.name in VALUE_NONE_IS_MEANINGFUL:
                continue
            hint = hints.get(item.name, item.type)
            if type(None) in typing.get_args(hint) or (isinstance(hint, types.UnionType) and type(None) in hint.__args__):
                names.add(item.name)
            elif item.default is None:
                names.add(item.name)
    return names


def read_config_file(path: Path, shipped: bool) -> dict:
    """The argument values of a YAML/JSON file, relative paths resolved against its folder (user files only)."""
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"Argument file {path} not found (shipped recipes: {', '.join(SHIPPED_CONFIGS)}).")
    values = yaml.safe_load(path.read_text())  # JSON is a subset of YAML
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of argument names to values.")
    if shipped:
        return values
    base = path.resolve().parent
    for name, value in values.items():
        if not isinstance(value, str) or not value or os.path.isabs(value) or value in RESUME_LAST:
            continue
        if name in PATH_ARGUMENTS:
            values[name] = str(base / value)
        elif name in PATH_OR_NAME_ARGUMENTS and (base / value).exists():
            values[name] = str(base / value)
    return values


def parse_command_line(parser, argv: list[str]):
    """Parse `[CONFIG] [--flags]` into the parser's dataclasses (see the module docstring)."""
    argv = list(argv)
    known = {action.dest for action in parser._actions}
    values = {}
    if argv and is_config_argument(argv[0]):
        name = argv.pop(0)
        values = read_config_file(resolve_config_file(name), shipped=name in SHIPPED_CONFIGS and not Path(name).exists())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown argument(s) in {name}: {unknown}; see --help for the valid names.")
    clearable = _optional_fields(parser.dataclass_types)
    remaining, index = [], 0
    while index < len(argv):
        argument = argv[index]
        name, equals, inline = argument[2:].partition("=") if argument.startswith("--") else ("", "", "")
        value = inline if equals else (argv[index + 1] if index + 1 < len(argv) else None)
        if name in clearable and value is not None and value.lower() in CLEAR_VALUES:
            values[name] = None
            index += 1 if equals else 2
            continue
        remaining.append(argument)
        index += 1
    if values:
        parser.set_defaults(**values)
        for action in parser._actions:  # a required argument given by the file need not be repeated as a flag
            if action.dest in values and values[action.dest] is not None:
                action.required = False
    return parser.parse_args_into_dataclasses(args=remaining, look_for_args_file=False)


def is_non_empty_dir(path) -> bool:
    return os.path.isdir(path) and any(os.scandir(path))


def check_output_dir(training_args, overwrite_output_dir: bool, trains: bool = True) -> str | None:
    """The one output-folder policy; returns the checkpoint to resume from (None: start afresh).

    Resume only when asked (`--resume_from_checkpoint last` or a folder); refuse a non-empty folder unless
    `--overwrite_output_dir`; refuse to mix with another run's checkpoints that `--save_total_limit` would delete.
    """
    from transformers.trainer_utils import get_last_checkpoint

    from ..utils.files import check_writable_folder
    from .checkpoints import last_complete_checkpoint

    output_dir = training_args.output_dir
    resume = training_args.resume_from_checkpoint
    if trains:
        check_writable_folder(output_dir, what="training output")
    if resume is not None and trains:
        if resume in RESUME_LAST:
            # the newest COMPLETE checkpoint: a run killed while saving leaves a newer, half-written one
            last = last_complete_checkpoint(output_dir, save_only_model=training_args.save_only_model)
            if last is None:
                raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no checkpoint-* folder in {output_dir}.")
            return last
        if not os.path.isdir(resume):
            raise FileNotFoundError(f"--resume_from_checkpoint {resume} is not a directory.")
        return resume
    if not trains or not is_non_empty_dir(output_dir):
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


def setup_logging(training_args, logger) -> None:
    """The commands' logging, as in Transformers' `examples/pytorch`: one stdout handler, the process's log level for
    `logger`, Transformers and datasets."""
    import datasets
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


def quiet_defaults(training_args):
    """Quiet by default: no progress bars for loading and saving models or preparing data (the training progress bar
    stays, `--disable_tqdm` hides it), and no `pin_memory` warning on machines without an accelerator."""
    import datasets
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    accelerator = torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None
    if accelerator is None and not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False


LOSS_TYPES = ("l2", "l1")
PREDICTION_HEADS_DIR = "prediction_heads"


@dataclass
class DistillationConfig(TrainingArguments):
    """`TrainingArguments` plus what the student learns from the teacher: which hidden states, with which loss."""

    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the distillation collator needs the raw audio column."}
    )

    student_layers: list[int] = field(
        default_factory=lambda: [2, 4, 6, 8, 10, 12],
        metadata={"help": "Student hidden_states indices (Transformers numbering: 0 = encoder input, k = output of "
                          "layer application k) trained to match --teacher_layers, pair by pair."},
    )
    teacher_layers: list[int] = field(
        default_factory=lambda: [2, 4, 6, 8, 10, 12],
        metadata={"help": "Teacher hidden_states indices that are the targets, one per --student_layers entry."},
    )
    loss_type: str = field(
        default="l2", metadata={"help": "Reconstruction loss: 'l2' (squared error) or 'l1'.", "choices": LOSS_TYPES}
    )
    cosine_weight: float = field(
        default=1.0, metadata={"help": "Weight of the mean -log(sigmoid(cosine similarity)) term, summed over pairs."}
    )
    feature_penalty_weight: float = field(
        default=0.0, metadata={"help": "Weight of the mean squared conv feature encoder output (0 in the recipe)."}
    )
    feature_grad_mult: float = field(
        default=0.1,
        metadata={"help": "Scale of the gradient into the student's conv feature encoder (0 freezes it, 1 leaves "
                          "it unchanged)."},
    )
    mask_padding: bool = field(
        default=True,
        metadata={"help": "Exclude padded frames from the loss means. False reproduces the original, which "
                          "averages over every frame of the padded batch."},
    )
    pre_ln_targets: bool | None = field(
        default=None,
        metadata={"help": "Compare hidden states after the next layer's attention LayerNorm (the original's variant "
                          "for pre-LN teachers such as HuBERT Large). Default: when the teacher is pre-LN."},
    )
    prediction_heads: bool = field(
        default=False,
        metadata={"help": "Train DistilHuBERT-style linear heads that map each selected student hidden state to the "
                          "teacher's hidden size (needed when the sizes differ). Saved in the output directory's "
                          f"'{PREDICTION_HEADS_DIR}/' folder, not inside the student."},
    )
    student_spec_augment: bool = field(
        default=False,
        metadata={"help": "Apply the student's SpecAugment masking during distillation (the original does not)."},
    )
    teacher_fast_path: bool = field(
        default=True,
        metadata={"help": "Attach the float32 CPU fast path of the convolutions (alhubert.models.fast_cpu_path) to "
                          "the teacher; it only runs for float32 tensors on CPU and gives the same outputs to float32 "
                          "rounding."},
    )

    teacher_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Compute the teacher's targets once: store them in this folder (float16 safetensors shards "
                          "keyed by utterance id, with a manifest of the teacher, layers and audio) during the first "
                          "epoch and read them back afterwards instead of running the teacher. Only for data whose "
                          "clips are never cropped (all at most --max_length_samples) with an 'id' column, and "
                          "--mask_padding true. About 1.66 GB per hour of audio for 6 targets of width 768."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}.")
        if not self.student_layers or len(self.student_layers) != len(self.teacher_layers):
            raise ValueError(
                f"student_layers {self.student_layers} and teacher_layers {self.teacher_layers} must be non-empty "
                "lists of the same length (one teacher target per student hidden state)."
            )
        for name in ("cosine_weight", "feature_penalty_weight", "feature_grad_mult"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.teacher_cache_dir and not self.mask_padding:
            raise ValueError(
                "--teacher_cache_dir stores only the real frames of each utterance, so the padded frames' targets "
                "are gone: it needs --mask_padding true."
            )

    @property
    def pair_names(self) -> list[str]:
        """One name per (student, teacher) pair, used in the logs: `"2_2"`, `"4_4"`, ..."""
        return [f"{student}_{teacher}" for student, teacher in zip(self.student_layers, self.teacher_layers)]
