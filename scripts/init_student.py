#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Save an ALHuBERT encoder built from a HuBERT teacher without distilling it: a starting point or a baseline.

    # the teacher-initialised student before distillation (2 distinct layers x 6 applications)
    python scripts/init_student.py --teacher_name_or_path outputs/teacher --num_hidden_groups 2 \
        --num_hidden_layers 6 --output_dir outputs/student-init
    # a randomly initialised student with the teacher's sizes
    python scripts/init_student.py --teacher_name_or_path outputs/teacher --num_hidden_groups 2 \
        --num_hidden_layers 6 --init_from_teacher false --output_dir outputs/student-random
    # the teacher itself as an ALHuBERT (one distinct layer per teacher layer: the same weights, the same outputs),
    # e.g. to probe it with `scripts/finetune_ctc.py --recipe superb`, which takes ALHuBERT encoders
    python scripts/init_student.py --teacher_name_or_path outputs/teacher --num_hidden_groups 12 \
        --num_hidden_layers 12 --output_dir outputs/teacher-as-alhubert

The teacher may be a `HubertModel` or a `HubertForCTC` folder (its encoder is used). The student is built exactly as
`scripts/distill.py` builds it (`alhubert.training.student_init`), and saved with its feature extractor.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from transformers import AutoFeatureExtractor, AutoModel, HfArgumentParser

from alhubert import AlHubertModel, default_feature_extractor
from alhubert.training.student_init import init_student_from_teacher, student_config_from_teacher


logger = logging.getLogger(__name__)


@dataclass
class InitStudentArguments:
    """The teacher, the student's shape and initialisation, and where to save it."""

    teacher_name_or_path: str = field(metadata={"help": "A HuBERT teacher folder (HubertModel or HubertForCTC)."})
    output_dir: str = field(metadata={"help": "Folder that receives the student and its feature extractor."})
    num_hidden_groups: int = field(default=2, metadata={"help": "Number of distinct student layers."})
    num_hidden_layers: int | None = field(
        default=None, metadata={"help": "Number of student layer applications (default: the teacher's layers)."}
    )
    layer_sharing: str = field(
        default="cycle",
        metadata={
            "help": "Order of the shared layers: 'cycle' (L0 L1 L0 L1) or 'block' (L0 L0 L1 L1).",
            "choices": ["cycle", "block"],
        },
    )
    init_from_teacher: bool = field(
        default=True,
        metadata={
            "help": "Copy the teacher's feature encoder, projection, positional convolution and "
            "first layers (the distillation recipe); False: random weights."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the random weights (those not copied)."})


def load_teacher_encoder(path: str):
    """The teacher's `HubertModel` encoder (also from a `HubertForCTC` folder) and its feature extractor."""
    teacher = AutoModel.from_pretrained(path)  # a HubertForCTC checkpoint loads into its HubertModel encoder
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(path)
    except OSError:
        feature_extractor = transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True)
    return teacher, feature_extractor


def init_student(args: InitStudentArguments) -> Path:
    """Build and save the student described by `args`; return its folder."""
    teacher, teacher_feature_extractor = load_teacher_encoder(args.teacher_name_or_path)
    do_normalize = bool(getattr(teacher_feature_extractor, "do_normalize", False))
    torch.manual_seed(args.seed)
    if args.init_from_teacher:
        student = init_student_from_teacher(
            teacher, args.num_hidden_groups, args.num_hidden_layers, args.layer_sharing, do_normalize=do_normalize
        )
    else:
        config = student_config_from_teacher(
            teacher.config,
            args.num_hidden_groups,
            args.num_hidden_layers,
            args.layer_sharing,
            do_normalize=do_normalize,
        )
        student = AlHubertModel(config)
    feature_extractor = default_feature_extractor(student.config)
    feature_extractor.sampling_rate = teacher_feature_extractor.sampling_rate
    output_dir = Path(args.output_dir)
    student.save_pretrained(output_dir)
    feature_extractor.save_pretrained(output_dir)
    logger.info(
        "Saved a %s %d x %d student (%.2f M parameters) to %s",
        "teacher-initialised" if args.init_from_teacher else "random",
        student.config.num_hidden_groups,
        student.config.num_hidden_layers,
        student.num_parameters() / 1e6,
        output_dir,
    )
    return output_dir


def main(argv: list[str] | None = None) -> Path:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(InitStudentArguments).parse_args_into_dataclasses(args=argv)
    return init_student(args)


if __name__ == "__main__":
    main()
