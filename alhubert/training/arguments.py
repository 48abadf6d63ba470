# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Command-line arguments of `alhubert distill`, `finetune-ctc` and `finetune-classification` (the shared ones and
`DistillationConfig`) and the one way to read them, `ArgumentParser`. Light to import (no torch), so `--help` is quick.

- Arguments come from flags, or from one YAML/JSON file (a shipped recipe by name, e.g. `small`) followed by flags
  that override it. Relative paths in a user's file resolve against the file's folder (`output_dir`, data and model
  folders; a model or dataset name is only resolved when that folder exists); the shipped recipes hold no input paths
  and their `output_dir` is relative to the current directory.
- `--NAME none` (or `null`) clears an optional value, e.g. `--eval_librispeech_sets none` (`--report_to none` keeps
  Transformers' meaning: no logging integrations).
"""

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

from ..utils.errors import one_line


CONFIGS_DIR = Path(__file__).parent / "configs"
# The recipes shipped with the package, by name: `alhubert distill small` reads configs/small.yaml.
SHIPPED_CONFIGS = tuple(sorted(path.stem for path in CONFIGS_DIR.glob("*.yaml")))
# Arguments holding a local path (resolved against the config file's folder) ...
PATH_ARGUMENTS = (
    "output_dir",
    "logging_dir",
    "librispeech_root",
    "audiofolder",
    "cache_dir",
    "resume_from_checkpoint",
)
# ... or either a local folder or a Hub name (resolved only when the folder exists next to the file).
PATH_OR_NAME_ARGUMENTS = ("model_name_or_path", "teacher_name_or_path", "dataset_name")
RESUME_LAST = ("last", "true", "True")
MAX_CONFIG_BYTES = 1 << 20  # an argument file is a few lines
MAX_CONFIG_NODES = 100_000  # values after YAML alias expansion
SHORT_AUDIO_POLICIES = ("drop", "error")


@dataclass
class OutputArguments:
    """What may happen to an existing output folder, and how many CPU threads the command uses."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Write into a non-empty --output_dir (its files are replaced as the run writes them; "
            "nothing is deleted). Without it, a non-empty --output_dir is refused."
        },
    )
    threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch (torch.set_num_threads). Default: OMP_NUM_THREADS when set, else "
            "torch's default (all cores); on a shared machine, set it to your share of the cores."
        },
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
        metadata={
            "help": "A `datasets` dataset: a Hub name, a local loading script or folder, or a save_to_disk folder."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_split_name: str = field(default="train", metadata={"help": "Split of the dataset used for training."})
    eval_split_name: str | None = field(
        default=None, metadata={"help": "Split used for evaluation (datasets or audiofolder sources)."}
    )
    validation_split_percentage: float | None = field(
        default=None,
        metadata={
            "help": "Without an evaluation split, hold out this percentage of the training data for evaluation."
        },
    )
    audiofolder: str | None = field(
        default=None,
        metadata={
            "help": "A folder of audio files for the `audiofolder` builder (metadata.csv with transcripts, or "
            "one sub-folder per label)."
        },
    )
    audio_column_name: str = field(default="audio", metadata={"help": "Column that holds the audio."})
    text_column_name: str = field(default="text", metadata={"help": "Column that holds the transcript."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Stream the dataset instead of downloading it (corpora larger than the disk)."},
    )
    max_length_samples: int | None = field(
        default=250000, metadata={"help": "Randomly crop longer clips to this many samples (16 kHz); 0 = no crop."}
    )
    min_length_samples: int = field(
        default=8000, metadata={"help": "Clips shorter than this many samples (16 kHz) are dropped (--short_audio)."}
    )
    short_audio: str = field(
        default="drop",
        metadata={
            "help": "Clips shorter than --min_length_samples: 'drop' them with a warning naming them, or "
            "'error' to stop with an error naming the first one.",
            "choices": SHORT_AUDIO_POLICIES,
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training examples (debugging, quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N evaluation examples (debugging, quick runs)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None,
        metadata={"help": "Processes used to read the audio headers (lengths) of a non-streamed dataset."},
    )

    def __post_init__(self) -> None:
        sources = [self.librispeech_root, self.dataset_name, self.audiofolder]
        if sum(source is not None for source in sources) != 1:
            raise ValueError("Give exactly one data source: --librispeech_root, --dataset_name or --audiofolder.")
        if self.short_audio not in SHORT_AUDIO_POLICIES:
            raise ValueError(f"--short_audio must be one of {SHORT_AUDIO_POLICIES}, got {self.short_audio!r}.")
        if self.validation_split_percentage is not None and not 0 < self.validation_split_percentage < 100:
            raise ValueError("--validation_split_percentage must lie strictly between 0 and 100.")


@dataclass
class EncoderArguments:
    """The pre-trained encoder a fine-tuning command starts from."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pre-trained ALHuBERT (or HuBERT-like) encoder: a Hub id or a local folder (required)."},
    )
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "Keep the convolutional feature encoder frozen."}
    )
    upstream: str = field(
        default="encoder",
        metadata={
            "help": "What a frozen probe reads: 'encoder', the hidden states of --model_name_or_path; 'mfcc', "
            "the 39-dimensional MFCC of the audio at the model's frames (a baseline without an "
            "encoder: the model gives only its conv stack's frame rate).",
            "choices": ("encoder", "mfcc"),
        },
    )

    def __post_init__(self) -> None:
        if not self.model_name_or_path:
            raise ValueError("--model_name_or_path is required: the pre-trained encoder to fine-tune.")


def resolve_config_file(name: str) -> Path:
    """A shipped recipe's name (`small`), or a path to a YAML/JSON file."""
    if name in SHIPPED_CONFIGS and not Path(name).exists():
        return CONFIGS_DIR / f"{name}.yaml"
    return Path(name)


def is_config_argument(argument: str) -> bool:
    return argument.endswith((".yaml", ".yml", ".json")) or argument in SHIPPED_CONFIGS


def _field_types(dataclass_types) -> dict:
    """Each argument's annotated type, by name."""
    types_by_name = {}
    for dataclass_type in dataclass_types:
        hints = typing.get_type_hints(dataclass_type)  # HfArgumentParser needs them resolvable too
        for item in dataclasses.fields(dataclass_type):
            if item.init:
                types_by_name[item.name] = (hints[item.name], item.default)
    return types_by_name


def _options(hint) -> tuple:
    """The members of a union annotation, or the annotation alone."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return typing.get_args(hint) if union else (hint,)


def _admits(hint, kind) -> bool:
    """Whether the annotation `hint` admits values of `kind` (e.g. `list`, `dict`, `NoneType`)."""
    return any(option is kind or typing.get_origin(option) is kind for option in _options(hint))


def _load_yaml(path: Path):
    """`yaml.safe_load` of a bounded document: at most MAX_CONFIG_BYTES, and MAX_CONFIG_NODES once aliases expand."""
    import yaml

    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes; an argument file is a few lines.")
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        sizes = {}

        def size(current) -> int:  # nodes after alias expansion, each node counted once per use
            if id(current) not in sizes:
                sizes[id(current)] = 0  # a recursive alias counts as one node
                children = current.value if isinstance(current.value, list) else []
                items = [item for child in children for item in (child if isinstance(child, tuple) else (child,))]
                sizes[id(current)] = 1 + sum(map(size, items))
            return sizes[id(current)]

        if node is not None and size(node) > MAX_CONFIG_NODES:
            raise ValueError(
                f"{path} expands to more than {MAX_CONFIG_NODES} values (YAML aliases); write the values out."
            )
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def read_config_file(name: str) -> dict:
    """The values of a shipped recipe or a YAML/JSON file, relative paths resolved against a user file's folder."""
    import yaml

    path = resolve_config_file(name)
    if not path.is_file():
        raise FileNotFoundError(f"Argument file {path} not found (shipped recipes: {', '.join(SHIPPED_CONFIGS)}).")
    try:
        values = _load_yaml(path)  # JSON is a subset of YAML
    except (yaml.YAMLError, RecursionError) as error:
        raise ValueError(f"{path} is not valid YAML/JSON: {one_line(error)}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of argument names to values.")
    if path != Path(name):  # a shipped recipe: no input paths, output_dir relative to the current directory
        return values
    base = path.resolve().parent
    for name, value in values.items():
        if not isinstance(value, str) or not value or os.path.isabs(value) or value in RESUME_LAST:
            continue
        if name in PATH_ARGUMENTS or (name in PATH_OR_NAME_ARGUMENTS and (base / value).exists()):
            values[name] = str(base / value)
    return values


def _clearable(convert):
    """`convert`, except that "none" / "null" (any case) give None."""

    def convert_or_clear(value):
        return None if isinstance(value, str) and value.lower() in ("none", "null") else convert(value)

    convert_or_clear.__name__ = getattr(convert, "__name__", "value")  # argparse names it in its errors
    return convert_or_clear


class ArgumentParser(HfArgumentParser):
    """`HfArgumentParser` reading `[CONFIG] [--flags]`: the values of one YAML/JSON file (a shipped recipe by name)
    become the defaults, then the command line overrides them, as TRL's `TrlParser --config` does. An optional
    argument is cleared with `--NAME none`."""

    def __init__(self, dataclass_types: tuple[type, ...], **kwargs: Any):
        self.field_types = _field_types(dataclass_types)
        super().__init__(dataclass_types, **kwargs)

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        """argparse's, with "none" clearing the arguments whose type admits None."""
        name = names[0].lstrip("-") if names else ""
        hint, default = self.field_types.get(name, (None, dataclasses.MISSING))
        if (
            (_admits(hint, type(None)) or default is None)
            and name != "report_to"  # `--report_to none` is a value of its own (no integrations), never cleared
            and callable(kwargs.get("type"))
        ):
            kwargs["type"] = _clearable(kwargs["type"])
        return super().add_argument(*names, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        """argparse's error exit (code 2), as one line naming the fix instead of the usage block."""
        self.exit(2, f"error: {self.prog}: {one_line(message)}; see {self.prog} --help.\n")

    def parse(self, argv: list[str]) -> tuple:
        """The dataclasses of `[CONFIG] [--flags]` (see the module docstring)."""
        argv = list(argv)
        if argv and is_config_argument(argv[0]):
            name = argv.pop(0)
            self.set_defaults(**self._checked(read_config_file(name), name))
        return self.parse_args_into_dataclasses(args=argv, look_for_args_file=False)

    def _checked(self, values: dict, source: str) -> dict:
        """The file's values as parser defaults: scalars as text, which argparse converts (and checks) like flags."""
        unknown = sorted(set(values) - set(self.field_types))
        if unknown:
            raise ValueError(f"Unknown argument(s) in {source}: {unknown}; see --help for the valid names.")
        defaults = {}
        for name, value in values.items():
            hint = self.field_types[name][0]
            if isinstance(value, list) and _admits(hint, list):
                list_type = next(option for option in _options(hint) if typing.get_origin(option) is list)
                element = (typing.get_args(list_type) or (str,))[0]
                if not all(isinstance(item, element) and not isinstance(item, bool) for item in value):
                    raise ValueError(f"{name} in {source} must be a list of {element.__name__} values, got {value!r}.")
            elif isinstance(value, dict) and _admits(hint, dict):
                pass
            elif isinstance(value, (list, dict)):
                raise ValueError(f"{name} in {source} must be a single value, got {type(value).__name__} {value!r}.")
            elif value is not None and not isinstance(value, str):
                value = str(value)
            defaults[name] = value
        return defaults


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
        metadata={
            "help": "Student hidden_states indices (Transformers numbering: 0 = encoder input, k = output of "
            "layer application k) trained to match --teacher_layers, pair by pair."
        },
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
        metadata={
            "help": "Scale of the gradient into the student's conv feature encoder (0 freezes it, 1 leaves "
            "it unchanged)."
        },
    )
    mask_padding: bool = field(
        default=True,
        metadata={
            "help": "Exclude padded frames from the loss means. False reproduces the original, which "
            "averages over every frame of the padded batch."
        },
    )
    pre_ln_targets: bool | None = field(
        default=None,
        metadata={
            "help": "Compare hidden states after the next layer's attention LayerNorm (the original's variant "
            "for pre-LN teachers such as HuBERT Large). Default: when the teacher is pre-LN."
        },
    )
    prediction_heads: bool = field(
        default=False,
        metadata={
            "help": "Train DistilHuBERT-style linear heads that map each selected student hidden state to the "
            "teacher's hidden size (needed when the sizes differ). Saved in the output directory's "
            f"'{PREDICTION_HEADS_DIR}/' folder, not inside the student."
        },
    )
    student_spec_augment: bool = field(
        default=False,
        metadata={"help": "Apply the student's SpecAugment masking during distillation (the original does not)."},
    )
    teacher_fast_path: bool = field(
        default=True,
        metadata={
            "help": "Attach the float32 CPU fast path of the convolutions (alhubert.models.fast_cpu_path) to "
            "the teacher; it only runs for float32 tensors on CPU and gives the same outputs to float32 "
            "rounding."
        },
    )

    teacher_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Compute the teacher's targets once: store them in this folder (float16 safetensors shards "
            "keyed by utterance id, with a manifest of the teacher, layers and audio) during the first "
            "epoch and read them back afterwards instead of running the teacher. Only for data whose "
            "clips are never cropped (all at most --max_length_samples) with an 'id' column, and "
            "--mask_padding true. About 1.66 GB per hour of audio for 6 targets of width 768."
        },
    )

    def __post_init__(self) -> None:
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
