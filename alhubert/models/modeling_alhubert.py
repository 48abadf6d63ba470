# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""PyTorch ALHuBERT: HuBERT with a few distinct transformer layers applied again and again (DistilALHuBERT).

Only what differs from Transformers' HuBERT is written here: the encoders hold `num_hidden_groups` distinct layers
and apply them `num_hidden_layers` times. This file is uploaded to the Hub as remote code: it imports only torch and
transformers (and its sibling `configuration_alhubert.py`).
"""

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Wav2Vec2FeatureExtractor
from transformers.backbone_utils import filter_output_hidden_states
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
from transformers.integrations.fsdp import is_fsdp_managed_module
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput, SequenceClassifierOutput
from transformers.models.hubert.modeling_hubert import (
    HubertEncoder,
    HubertEncoderLayer,
    HubertEncoderLayerStableLayerNorm,
    HubertFeatureEncoder,
    HubertFeatureProjection,
    HubertForCTC,
    HubertForSequenceClassification,
    HubertModel,
    HubertPositionalConvEmbedding,
    HubertPreTrainedModel,
)
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_alhubert import ALHUBERT_AUTO_MAP, AlHubertConfig
from .fast_cpu_path import use_fast_cpu_path


class AlHubertEncoder(HubertEncoder):
    """HuBERT's encoder, post-LN (Base order) or pre-LN (Large order, `do_stable_layer_norm=True`), that applies its
    `num_hidden_groups` distinct layers `num_hidden_layers` times, in the configured order."""

    def __init__(self, config: AlHubertConfig):
        nn.Module.__init__(self)
        self.config = config
        self.pos_conv_embed = HubertPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        layer_class = HubertEncoderLayerStableLayerNorm if config.do_stable_layer_norm else HubertEncoderLayer
        self.layers = nn.ModuleList([layer_class(config) for _ in range(config.num_hidden_groups)])
        # the distinct layer of each application, read from the config once: a launch-bound forward (small batches
        # on a GPU) is paced by Python, and config attributes are slow to read
        self.application_order = tuple(config.distinct_layer_index(i) for i in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        depth: int | None = None,
        **kwargs: Any,
    ) -> BaseModelOutput:
        depth = depth or len(self.application_order)
        if attention_mask is not None:
            # padded frames are zero before the positional convolution, as in HuBERT
            hidden_states = hidden_states.masked_fill(~attention_mask.unsqueeze(-1), 0.0)
        attention_mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
        )
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.config.do_stable_layer_norm:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)

        layerdrop = self.config.layerdrop if self.training else 0.0
        if layerdrop > 0.0 and (is_deepspeed_zero3_enabled() or is_fsdp_managed_module(self)):
            layerdrop = 0.0  # synced GPUs must all run every layer
        layers = list(self.layers)
        for index in self.application_order[:depth]:
            if layerdrop > 0.0 and torch.rand([]) < layerdrop:
                continue
            hidden_states = layers[index](hidden_states, attention_mask=attention_mask, **kwargs)

        if self.config.do_stable_layer_norm and depth == self.config.num_hidden_layers:
            hidden_states = self.layer_norm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)


def default_feature_extractor(config: AlHubertConfig) -> Wav2Vec2FeatureExtractor:
    """The 16 kHz feature extractor that matches `config` (normalisation as trained; attention masks always)."""
    return Wav2Vec2FeatureExtractor(do_normalize=config.do_normalize, return_attention_mask=True)


class AlHubertPreTrainedModel(HubertPreTrainedModel):
    """Base class of the ALHuBERT models: weight initialisation, remote-code saving and input checks."""

    config: AlHubertConfig
    config_class = AlHubertConfig
    base_model_prefix = "alhubert"
    # What `save_pretrained` writes into config.json so that the Auto classes find this model's remote code.
    remote_code_auto_map = ALHUBERT_AUTO_MAP

    def describe_remote_code(self) -> None:
        """Add the sibling Auto classes to `config.auto_map` (an encoder folder loads as `AutoModelForCTC` for
        fine-tuning) and the audio feature pipeline to `config.custom_pipelines`. The pipeline module is imported
        here, so that `custom_object_save` copies it with this module's other relative imports."""
        from .pipeline_audio_features import AudioFeatureExtractionPipeline

        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self.remote_code_auto_map}
        self.config.custom_pipelines = {
            "audio-feature-extraction": {
                "impl": f"pipeline_audio_features.{AudioFeatureExtractionPipeline.__name__}",
                "pt": ["AutoModel"],
                "type": "audio",
            }
        }

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """HuBERT's `save_pretrained` after `describe_remote_code`, plus a matching feature extractor unless
        `save_directory` has a `preprocessor_config.json`."""
        self.describe_remote_code()
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True) and not (Path(save_directory) / "preprocessor_config.json").exists():
            default_feature_extractor(self.config).save_pretrained(save_directory)

    def _check_inputs(self, input_values, attention_mask):
        if not torch.is_tensor(input_values) or input_values.dim() != 2 or not input_values.is_floating_point():
            described = (
                f"a {input_values.dim()}-D {input_values.dtype} tensor"
                if torch.is_tensor(input_values)
                else type(input_values).__name__
            )
            raise ValueError(
                f"input_values must be a 2-D float tensor (batch, samples) of raw 16 kHz audio, got {described}. "
                "Use a Wav2Vec2FeatureExtractor (or `input_values[None]` for one 1-D waveform)."
            )
        if input_values.shape[0] == 0:
            raise ValueError(
                f"input_values is an empty batch (shape {tuple(input_values.shape)}); give at least one waveform."
            )
        field = self.config.receptive_field
        if input_values.shape[1] < field:
            raise ValueError(
                f"input_values has {input_values.shape[1]} samples, fewer than the feature encoder's receptive field "
                f"({field} samples, {1000 * field / 16000:.0f} ms at 16 kHz); pad or drop such short audio."
            )
        # Values are checked on CPU only: on an accelerator the test would wait for the device on every forward.
        compiling = torch.compiler.is_compiling()
        if attention_mask is not None:
            if not torch.is_tensor(attention_mask):
                raise ValueError(
                    f"attention_mask must be a tensor of 0/1 (or bool) values, got {type(attention_mask).__name__}."
                )
            if attention_mask.shape != input_values.shape:
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)} but input_values has shape "
                    f"{tuple(input_values.shape)}; they must match (1 for real samples, 0 for padding)."
                )
            # only 0/1: HuBERT would count a 2 twice (left padding and gaps are fine, frames are read where the
            # real samples are)
            checked = attention_mask.device.type == "cpu" and not compiling and attention_mask.dtype != torch.bool
            if checked and not ((attention_mask == 0) | (attention_mask == 1)).all():
                raise ValueError(
                    "attention_mask must hold only 0 (padding) and 1 (real sample); found other values. "
                    "Use the mask a Wav2Vec2FeatureExtractor returns."
                )
        if input_values.device.type == "cpu" and not compiling and not torch.isfinite(input_values).all():
            raise ValueError("input_values contains NaN or infinite samples; clean the audio before the model.")

    def _get_feat_extract_output_lengths(self, input_lengths, add_adapter=None):
        """Output frames of the feature encoder for `input_lengths` samples, never negative.

        HuBERT's formula goes negative for items shorter than the receptive field (and its attention mask then
        indexes from the end); here each convolution's output length is clamped at 0.
        """
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride):
            input_lengths = (input_lengths - kernel) // stride + 1
            input_lengths = input_lengths.clamp(min=0) if torch.is_tensor(input_lengths) else max(input_lengths, 0)
        return input_lengths

    def _get_feature_vector_attention_mask(self, feature_vector_length, attention_mask, add_adapter=None):
        """Frame mask (batch, frames): True for the frames whose receptive field holds only real samples.

        Read from where the real samples are, not from their count: with right padding this is HuBERT's mask (an
        item shorter than the receptive field has no real frame); with left padding or gaps the frames over the
        padding are masked (HuBERT counts the ones and masks the last frames instead).
        """
        real = attention_mask.to(torch.bool)
        # real samples before each position: window sums in O(samples)
        counts = nn.functional.pad(real.to(torch.int32).cumsum(-1, dtype=torch.int32), (1, 0))
        starts = torch.arange(feature_vector_length, device=real.device) * self.config.inputs_to_logits_ratio
        field = self.config.receptive_field
        ends = (starts + field).clamp(max=real.shape[-1])
        return (counts[:, ends] - counts[:, starts.clamp(max=real.shape[-1])]) == field

    @staticmethod
    def _real_frames_first(frame_mask: torch.Tensor) -> torch.Tensor:
        """Indices (batch, frames) that put each item's real frames first, in their order (a stable sort), as the
        CTC loss and packed LSTMs read them; the identity for right-padded items."""
        return torch.sort((~frame_mask).to(torch.int8), dim=1, stable=True).indices

    @property
    def hubert(self) -> "AlHubertModel":
        # HuBERT's inherited heads call `self.hubert`; here the encoder is stored as `self.alhubert`.
        return self.alhubert


class AlHubertModel(AlHubertPreTrainedModel, HubertModel):
    """The bare ALHuBERT encoder, returning hidden states (one per layer application)."""

    def __init__(self, config: AlHubertConfig):
        AlHubertPreTrainedModel.__init__(self, config)
        self.feature_extractor = HubertFeatureEncoder(config)
        self.feature_projection = HubertFeatureProjection(config)
        if config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0:
            self.masked_spec_embed = nn.Parameter(torch.Tensor(config.hidden_size).uniform_())
        self.encoder = AlHubertEncoder(config)
        self.post_init()
        use_fast_cpu_path(self)

    def set_fast_cpu_path(self, enabled: bool) -> None:
        """Turn the CPU fast path of the convolutions on (default) or off (HuBERT's exact arithmetic)."""
        use_fast_cpu_path(self, enabled)

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the convolutional feature encoder (for fine-tuning)."""
        self.feature_extractor._freeze_parameters()

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        input_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        depth: int | None = None,
        **kwargs: Any,
    ) -> BaseModelOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz waveforms, as returned by a `Wav2Vec2FeatureExtractor`.
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            1 for real samples, 0 for padding.
        mask_time_indices (`torch.BoolTensor` of shape `(batch_size, frames)`, *optional*):
            Frames to replace by the learned mask embedding.
        depth (`int`, *optional*):
            Elastic depth: run only the first `depth` layer applications (1..num_hidden_layers) and skip the rest.
            `last_hidden_state` then equals `hidden_states[depth]` of the full run, at a fraction of its cost.
        """
        self._check_inputs(input_values, attention_mask)
        if depth is not None and (
            isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= self.config.num_hidden_layers
        ):  # a bool is an int in Python: depth=True would silently run one layer
            raise ValueError(f"depth must be an integer between 1 and {self.config.num_hidden_layers}, got {depth!r}.")
        # float64 / float16 audio for a float32 model (and the reverse): computed in the model's dtype, as the
        # pipeline and HuBERT's feature extractors (float32) do
        input_values = input_values.to(self.dtype)

        extract_features = self.feature_extractor(input_values).transpose(1, 2)
        if attention_mask is not None:
            attention_mask = self._get_feature_vector_attention_mask(extract_features.shape[1], attention_mask)
        hidden_states = self.feature_projection(extract_features)
        hidden_states = self._mask_hidden_states(
            hidden_states, mask_time_indices=mask_time_indices, attention_mask=attention_mask
        )
        return self.encoder(hidden_states, attention_mask=attention_mask, depth=depth, **kwargs)


class AlHubertForCTC(AlHubertPreTrainedModel, HubertForCTC):
    """ALHuBERT with a linear CTC head, for speech recognition."""

    def __init__(self, config: AlHubertConfig, target_lang: str | None = None):
        AlHubertPreTrainedModel.__init__(self, config)
        if config.vocab_size is None:
            raise ValueError("AlHubertForCTC needs config.vocab_size (the size of the CTC tokenizer's vocabulary).")
        self.alhubert = AlHubertModel(config)
        self.dropout = nn.Dropout(config.final_dropout)
        self.target_lang = target_lang
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutput:
        """HuBERT's CTC forward, except that the loss reads each item's real frames wherever they are (left padding
        or gaps: HuBERT takes the first frames, counted from the ones of the mask)."""
        if labels is None or attention_mask is None:
            return super().forward(
                input_values, attention_mask=attention_mask, labels=labels, return_dict=True, **kwargs
            )
        if labels.max() >= self.config.vocab_size:
            raise ValueError(f"Label values must be <= vocab_size: {self.config.vocab_size}")
        outputs = super().forward(input_values, attention_mask=attention_mask, return_dict=True, **kwargs)
        frames = self._get_feature_vector_attention_mask(outputs.logits.shape[1], attention_mask)
        order = self._real_frames_first(frames).unsqueeze(-1).expand_as(outputs.logits)
        logits = outputs.logits.gather(1, order)
        loss = self.loss_function(
            logits=logits,
            labels=labels,
            logit_lengths=frames.sum(-1),
            blank_token_id=self.config.pad_token_id,
            reduction=self.config.ctc_loss_reduction,
            zero_infinity=self.config.ctc_zero_infinity,
            **kwargs,
        )
        return CausalLMOutput(
            loss=loss, logits=outputs.logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class AlHubertForSequenceClassification(AlHubertPreTrainedModel, HubertForSequenceClassification):
    """ALHuBERT with mean pooling and a linear classifier, for utterance-level tasks."""

    def __init__(self, config: AlHubertConfig):
        AlHubertPreTrainedModel.__init__(self, config)
        self.alhubert = AlHubertModel(config)
        num_layers = config.num_hidden_layers + 1
        if config.use_weighted_layer_sum:
            self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    @filter_output_hidden_states
    def forward(
        self,
        input_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """HuBERT's classification forward (mean pooling over real frames), except that an item with no real frame
        (shorter than the receptive field) pools to zeros instead of 0 / 0 = NaN."""
        if self.config.use_weighted_layer_sum:
            kwargs["output_hidden_states"] = True
        outputs = self.alhubert(input_values, attention_mask=attention_mask, **kwargs)
        if self.config.use_weighted_layer_sum:
            hidden_states = torch.stack(outputs.hidden_states, dim=1)
            norm_weights = nn.functional.softmax(self.layer_weights, dim=-1)
            hidden_states = (hidden_states * norm_weights.view(-1, 1, 1)).sum(dim=1)
        else:
            hidden_states = outputs.last_hidden_state
        hidden_states = self.projector(hidden_states)
        if attention_mask is None:
            pooled_output = hidden_states.mean(dim=1)
        else:
            padding_mask = self._get_feature_vector_attention_mask(hidden_states.shape[1], attention_mask)
            hidden_states = hidden_states.masked_fill(~padding_mask.unsqueeze(-1), 0.0)
            pooled_output = hidden_states.sum(dim=1) / padding_mask.sum(dim=1).clamp(min=1).view(-1, 1)
        logits = self.classifier(pooled_output)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1))
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


AlHubertModel.register_for_auto_class("AutoModel")
AlHubertForCTC.register_for_auto_class("AutoModelForCTC")
AlHubertForSequenceClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = [
    "AlHubertForCTC",
    "AlHubertForSequenceClassification",
    "AlHubertModel",
    "AlHubertPreTrainedModel",
    "default_feature_extractor",
]
