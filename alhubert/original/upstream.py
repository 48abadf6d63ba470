# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The original DistilALHuBERT feature interface (`UpstreamExpert`), usable as a custom S3PRL upstream."""

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from ..models.modeling_alhubert import AlHubertModel
from .conversion import load_original_model


class UpstreamExpert(nn.Module):
    """ALHuBERT features with the original interface, from a converted directory, a Hub id or an original `.ckpt`.

    Calling it on a list of 1-D 16 kHz waveforms returns the dict the original returns, `{"last_hidden_state",
    "hidden_states", "pad_mask", "paper"}`: `hidden_states[i]` is the output of layer application `i` (Transformers'
    `hidden_states[1:]`), `pad_mask` (batch, frames) is 1 for real frames and `paper` equals `last_hidden_state`.
    It is built in eval mode, as SUPERB uses frozen upstreams, and never applies SpecAugment masking (also in
    training mode). `dtype=torch.bfloat16` runs the native bf16 path (weights in bf16, hidden states returned in bf16).
    """

    def __init__(
        self,
        path_or_repo_id: str,
        trust_checkpoint: bool = False,
        dtype: torch.dtype | None = None,
        **from_pretrained_kwargs: Any,
    ):
        super().__init__()
        path = Path(path_or_repo_id)
        if path.is_file():
            self.model, _ = load_original_model(path, trust_checkpoint=trust_checkpoint)
        elif path.suffix == ".ckpt":
            raise FileNotFoundError(f"Checkpoint not found: {path_or_repo_id}")
        else:
            self.model = AlHubertModel.from_pretrained(path_or_repo_id, **from_pretrained_kwargs)
        # Features never get SpecAugment masking, also in training mode (S3PRL's upstream fine-tuning, `-f`), as
        # with the original expert and S3PRL's HuBERT expert; dropout still follows train()/eval().
        self.model.config.apply_spec_augment = False
        if dtype is not None:
            self.model.to(dtype)
        self.eval()

    def get_downsample_rates(self, key: str) -> int:
        """Input samples per output frame, for every output key (320 for HuBERT's feature encoder)."""
        return math.prod(self.model.config.conv_stride)

    def forward(self, wavs: list[torch.Tensor]) -> dict:
        if not isinstance(wavs, (list, tuple)) or not wavs:
            raise ValueError("UpstreamExpert expects a non-empty list of 1-D 16 kHz waveform tensors.")
        for index, wav in enumerate(wavs):
            if not torch.is_tensor(wav) or wav.dim() != 1 or not wav.is_floating_point():
                found = f"{wav.dim()}-D {wav.dtype} tensor" if torch.is_tensor(wav) else type(wav).__name__
                raise ValueError(f"wavs[{index}] must be a 1-D float tensor of 16 kHz samples, got a {found}.")
        if self.model.config.do_normalize:
            # the original layer-normalises each waveform before padding
            wavs = [F.layer_norm(wav, wav.shape) for wav in wavs]
        input_values = pad_sequence(list(wavs), batch_first=True)
        attention_mask = pad_sequence([torch.ones_like(wav, dtype=torch.long) for wav in wavs], batch_first=True)
        outputs = self.model(input_values, attention_mask=attention_mask, output_hidden_states=True)
        pad_mask = self.model._get_feature_vector_attention_mask(outputs.last_hidden_state.shape[1], attention_mask)
        return {
            "last_hidden_state": outputs.last_hidden_state,
            "hidden_states": list(outputs.hidden_states[1:]),
            "pad_mask": pad_mask.long(),
            "paper": outputs.last_hidden_state,
        }


__all__ = ["UpstreamExpert"]
