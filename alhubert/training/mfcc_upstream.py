# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The MFCC baseline of the probes (SUPERB's FBANK row): HuBERT's iteration-1 input features in place of an encoder.

`MfccUpstream` stands where a probe head keeps its frozen encoder (`model.alhubert`, or `model.hubert`): it has no
parameters and returns the 39-dimensional MFCC of `alhubert kmeans-targets` (13 + deltas + delta-deltas of the
unnormalised audio, 100 Hz; frame i of the model's 20 ms frames takes 10 ms frame 2 i) as every entry of
`hidden_states`, so that the probe's softmax-weighted sum of hidden states is the MFCC itself. Frame counts and padding
follow the conv stack of the configuration the probe was built from (`frame_counts`), as for an encoder.
`--upstream mfcc` of `finetune-ctc --recipe superb` and of `finetune-classification --freeze_base_model` builds such a
probe; its saved folder holds the head only.
"""

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .hubert_pretraining import align_labels_to_frames, frame_counts
from .kmeans_targets import mfcc_features


MFCC_DIM = 39
# The probe's configuration: the width of the MFCC and one layer application (two identical hidden states)
MFCC_SHAPE = {
    "hidden_size": MFCC_DIM,
    "num_hidden_layers": 1,
    "num_hidden_groups": 1,
    "num_attention_heads": 1,
    "intermediate_size": MFCC_DIM,
    "num_conv_pos_embedding_groups": 1,
}


class MfccUpstream(nn.Module):
    """A frozen, parameter-free stand-in for a probe's encoder whose hidden states are the MFCC frames."""

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        if config.hidden_size != MFCC_DIM:
            raise ValueError(f"An MFCC upstream needs hidden_size {MFCC_DIM}, got {config.hidden_size}.")
        self.config = config

    def forward(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> BaseModelOutput:
        """MFCC of each row's real samples, (batch, frames, 39), zeros on padding frames."""
        lengths = (
            [input_values.shape[-1]] * len(input_values) if attention_mask is None else attention_mask.sum(-1).tolist()
        )
        frames = int(frame_counts(self.config, input_values.shape[-1]))
        features = torch.zeros(len(input_values), frames, MFCC_DIM, dtype=torch.float32)
        for row, (waveform, length) in enumerate(zip(input_values.detach().float().cpu().numpy(), lengths)):
            own_frames = int(frame_counts(self.config, int(length)))
            if own_frames > 0:
                mfcc = mfcc_features(np.ascontiguousarray(waveform[: int(length)]))
                features[row, :own_frames] = torch.from_numpy(align_labels_to_frames(mfcc, own_frames))
        features = features.to(input_values.device)
        return BaseModelOutput(
            last_hidden_state=features, hidden_states=(features,) * (self.config.num_hidden_layers + 1)
        )


def with_mfcc_upstream(model: PreTrainedModel) -> PreTrainedModel:
    """`model` (a probe built from a configuration with `MFCC_SHAPE`) with its encoder (the attribute named by its
    `base_model_prefix`: `alhubert`, `hubert`, ...) replaced by `MfccUpstream`."""
    setattr(model, model.base_model_prefix, MfccUpstream(model.config))
    return model
