# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""SUPERB-style speech recognition on a frozen ALHuBERT: weighted layer sum, 2-layer BiLSTM, character CTC.

This is the paper's downstream protocol (SUPERB ASR as in S3PRL). It is a model of its own type
(`"alhubert-superb"`), so `AutoModelForCTC`, `from_pretrained` and `pipeline("automatic-speech-recognition")` pick
this class and never load its weights into the linear-head `AlHubertForCTC`. This file ships as Hub remote code: it
imports only torch and transformers (and its sibling modules).
"""

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

# AlHubertSuperbConfig is imported here too: folders saved before it moved name `modeling_superb.AlHubertSuperbConfig`.
from .configuration_alhubert import AlHubertSuperbConfig
from .modeling_alhubert import AlHubertModel, AlHubertPreTrainedModel


SUPERB_AUTO_MAP = {
    "AutoConfig": "configuration_alhubert.AlHubertSuperbConfig",
    "AutoModelForCTC": "modeling_superb.AlHubertSuperbForCTC",
}


class AlHubertSuperbForCTC(AlHubertPreTrainedModel):
    """Frozen ALHuBERT + softmax-weighted layer sum + bidirectional LSTM + linear CTC output (SUPERB ASR)."""

    config: AlHubertSuperbConfig
    config_class = AlHubertSuperbConfig
    remote_code_auto_map = SUPERB_AUTO_MAP

    def __init__(self, config: AlHubertSuperbConfig):
        super().__init__(config)
        self.alhubert = AlHubertModel(config)
        self.alhubert.requires_grad_(False)
        self.layer_weights = nn.Parameter(torch.zeros(config.num_hidden_layers + 1))
        self.lstm = nn.LSTM(
            config.hidden_size,
            config.superb_lstm_size,
            num_layers=config.superb_lstm_layers,
            dropout=config.superb_dropout if config.superb_lstm_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.superb_dropout)
        self.lm_head = nn.Linear(2 * config.superb_lstm_size, config.vocab_size)
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is self:
            nn.init.zeros_(self.layer_weights)  # equal weights after the softmax

    def train(self, mode: bool = True) -> "AlHubertSuperbForCTC":
        """Train the head; the upstream encoder stays in eval mode (no dropout), as in SUPERB."""
        super().train(mode)
        self.alhubert.eval()
        self.alhubert.requires_grad_(False)  # from_pretrained re-enables gradients after __init__
        return self

    def forward(
        self,
        input_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            CTC targets (tokenizer ids); -100 marks padding.
        """
        if labels is not None and labels.max() >= self.config.vocab_size:
            raise ValueError(f"Label values must be < vocab_size ({self.config.vocab_size}), got {labels.max()}.")
        with torch.no_grad():
            upstream = self.alhubert(input_values, attention_mask=attention_mask, output_hidden_states=True)
        hidden_states = torch.stack(upstream.hidden_states)  # (layers + 1, batch, frames, hidden)
        weights = torch.softmax(self.layer_weights, dim=0).to(hidden_states.dtype)
        features = (weights[:, None, None, None] * hidden_states).sum(dim=0)

        if attention_mask is None:
            attention_mask = torch.ones_like(input_values, dtype=torch.long)
        # each item's real frames first (left padding or gaps too): the BiLSTM and the CTC loss read them from there
        frames = self._get_feature_vector_attention_mask(features.shape[1], attention_mask)
        order = self._real_frames_first(frames).unsqueeze(-1)
        features = features.gather(1, order.expand_as(features))
        frame_lengths = frames.sum(-1)
        packed = nn.utils.rnn.pack_padded_sequence(
            features, frame_lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        packed_output, _ = self.lstm(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(packed_output, batch_first=True, total_length=features.shape[1])
        compact_logits = self.lm_head(self.dropout(output))
        # back to the frames' own positions
        logits = torch.empty_like(compact_logits).scatter_(1, order.expand_as(compact_logits), compact_logits)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=compact_logits,
                labels=labels,
                logit_lengths=frame_lengths,
                blank_token_id=self.config.pad_token_id,
                reduction=self.config.ctc_loss_reduction,
                zero_infinity=self.config.ctc_zero_infinity,
            )
        return CausalLMOutput(loss=loss, logits=logits)


AlHubertSuperbForCTC.register_for_auto_class("AutoModelForCTC")

__all__ = ["AlHubertSuperbConfig", "AlHubertSuperbForCTC"]
