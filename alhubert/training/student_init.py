# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Initialise an ALHuBERT student from a Transformers HuBERT teacher, as DistilALHuBERT does before distillation."""

import logging
from typing import Any

import torch
from transformers import HubertModel, PretrainedConfig

from ..models.configuration_alhubert import PRESETS, AlHubertConfig
from ..models.modeling_alhubert import AlHubertModel


logger = logging.getLogger(__name__)

# Config entries that describe the teacher checkpoint or its head, not the architecture the student shares with it.
_NOT_COPIED = (
    "model_type",
    "architectures",
    "_name_or_path",
    "transformers_version",
    "auto_map",
    "dtype",
    "id2label",
    "label2id",
    "problem_type",
)

# The DistilALHuBERT paper's student regularisation (dropout and attention dropout 0.1, activation dropout 0, no
# layer drop), as in the released students' configs: the teacher's own dropouts and layer drop are not copied.
STUDENT_DROPOUTS = {key: value for key, value in PRESETS["small"].items() if key.endswith(("dropout", "layerdrop"))}


def student_config_from_teacher(
    teacher_config: PretrainedConfig,
    num_hidden_groups: int,
    num_hidden_layers: int | None = None,
    layer_sharing: str = "cycle",
    **config_overrides: Any,
) -> AlHubertConfig:
    """An `AlHubertConfig` with the teacher's dimensions, feature encoder and layer-norm order.

    `num_hidden_layers` (layer applications) defaults to the teacher's number of layers; dropouts default to
    `STUDENT_DROPOUTS`; any other config attribute can be overridden by keyword.
    """
    kwargs = {key: value for key, value in teacher_config.to_dict().items() if key not in _NOT_COPIED}
    kwargs.update(STUDENT_DROPOUTS)
    kwargs.update(
        num_hidden_layers=num_hidden_layers or teacher_config.num_hidden_layers,
        num_hidden_groups=num_hidden_groups,
        layer_sharing=layer_sharing,
    )
    kwargs.update(config_overrides)
    return AlHubertConfig(**kwargs)


def _copy_(target: torch.nn.Module, source: torch.nn.Module, name: str):
    missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"Cannot copy the teacher's {name}: missing {missing}, unexpected {unexpected}.")


@torch.no_grad()
def init_student_from_teacher(
    teacher: HubertModel,
    num_hidden_groups: int,
    num_hidden_layers: int | None = None,
    layer_sharing: str = "cycle",
    **config_overrides: Any,
) -> AlHubertModel:
    """Build an `AlHubertModel` with the teacher's dimensions and copy its weights into it.

    Copied: the conv feature encoder, the feature projection (layer norm + linear), the positional convolution, the
    encoder's final layer norm, the mask embedding (when both models have one), and teacher layer `j` into distinct
    layer `j` for `j < num_hidden_groups`. Works for HuBERT Base/Large and for DistilHuBERT-shaped (2-layer) teachers.
    """
    teacher = getattr(teacher, "hubert", teacher)  # HubertForCTC & co. hold the encoder at `.hubert`
    if not isinstance(teacher, HubertModel):
        raise TypeError(
            f"init_student_from_teacher needs a transformers.HubertModel teacher, got {type(teacher).__name__}. "
            "Load it with HubertModel.from_pretrained(...)."
        )
    if num_hidden_groups > teacher.config.num_hidden_layers:
        raise ValueError(
            f"num_hidden_groups ({num_hidden_groups}) is larger than the teacher's number of layers "
            f"({teacher.config.num_hidden_layers}): every distinct student layer is copied from a teacher layer. "
            "Choose at most that many distinct layers."
        )
    config = student_config_from_teacher(
        teacher.config, num_hidden_groups, num_hidden_layers, layer_sharing, **config_overrides
    )
    student = AlHubertModel(config)

    _copy_(student.feature_extractor, teacher.feature_extractor, "feature encoder")
    _copy_(student.feature_projection, teacher.feature_projection, "feature projection")
    _copy_(student.encoder.pos_conv_embed, teacher.encoder.pos_conv_embed, "positional convolution")
    _copy_(student.encoder.layer_norm, teacher.encoder.layer_norm, "encoder layer norm")
    for index in range(num_hidden_groups):
        _copy_(student.encoder.layers[index], teacher.encoder.layers[index], f"layer {index}")
    if hasattr(student, "masked_spec_embed") and hasattr(teacher, "masked_spec_embed"):
        student.masked_spec_embed.copy_(teacher.masked_spec_embed)
    logger.info(
        "Initialised a %d-group x %d-application student from the teacher's feature encoder, projection, "
        "positional convolution and layers 0..%d.",
        config.num_hidden_groups,
        config.num_hidden_layers,
        num_hidden_groups - 1,
    )
    return student


__all__ = ["STUDENT_DROPOUTS", "init_student_from_teacher", "student_config_from_teacher"]
