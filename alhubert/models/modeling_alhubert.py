# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""PyTorch ALHuBERT: HuBERT with a few distinct transformer layers applied again and again (DistilALHuBERT).

Only what differs from Transformers' HuBERT is written here: the encoders hold `num_hidden_groups` distinct layers
and apply them `num_hidden_layers` times. This file is uploaded to the Hub as remote code: it imports only torch and
transformers (and its sibling `configuration_alhubert.py`).
"""

import os

import torch
from torch import nn
from torch.nn import functional as F
from transformers import Wav2Vec2FeatureExtractor
from transformers.activations import GELUActivation
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
from transformers.integrations.fsdp import is_fsdp_managed_module
from transformers.masking_utils import create_bidirectional_mask
from transformers.backbone_utils import filter_output_hidden_states
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput
from transformers.models.hubert.modeling_hubert import (
    HubertEncoder,
    HubertEncoderLayer,
    HubertEncoderLayerStableLayerNorm,
    HubertEncoderStableLayerNorm,
    HubertFeatureEncoder,
    HubertFeatureProjection,
    HubertForCTC,
    HubertForSequenceClassification,
    HubertGroupNormConvLayer,
    HubertModel,
    HubertPositionalConvEmbedding,
    HubertPreTrainedModel,
)
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_alhubert import ALHUBERT_AUTO_MAP, AlHubertConfig


def _strided_conv_on_frames(frames, weight, bias, stride):
    """`conv1d(kernel, stride)` over `frames` (rows = time steps of all items end to end, columns = channels).

    Rows are grouped `stride` at a time, so a convolution window is one row plus the start of the next ones: the
    convolution is one matrix product per group of `stride` kernel taps, on views (no im2col copy). Each item must
    start at a multiple of `stride` rows; the last `ceil(kernel / stride) - 1` output rows of an item are not valid.
    """
    out_channels, in_channels, kernel = weight.shape
    grouped = frames.view(-1, stride * in_channels)
    taps = weight.permute(2, 1, 0).reshape(kernel * in_channels, out_channels)  # row = (tap, input channel)
    width = min(stride, kernel) * in_channels
    output = grouped[:, :width] @ taps[:width] if bias is None else torch.addmm(bias, grouped[:, :width], taps[:width])
    blocks = -(-kernel // stride)
    valid = grouped.shape[0] - blocks + 1
    for block in range(1, blocks):
        start = block * stride * in_channels
        width = min(stride, kernel - block * stride) * in_channels
        output[:valid].addmm_(grouped[block : block + valid, :width], taps[start : start + width])
    return output


def _fast_cpu_path(module, tensor):
    """Whether `module` may take its float32 CPU fast path on `tensor` (else HuBERT's own code runs)."""
    return (
        module.fast_cpu_path
        and tensor.device.type == "cpu"
        and tensor.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and not (module.training and getattr(module, "gradient_checkpointing", False))
    )


def _activation(activation, frames):
    """`activation(frames)`, in place for exact GELU when no gradient flows (no second copy of large outputs)."""
    if not frames.requires_grad and isinstance(activation, GELUActivation) and activation.act is F.gelu:
        return torch.ops.aten.gelu_(frames)
    return activation(frames)


class AlHubertFeatureEncoder(HubertFeatureEncoder):
    """HuBERT's convolutional feature encoder (same modules and weights), computed as matrix products on CPUs.

    oneDNN runs these channels-first strided `conv1d`s well below matmul speed; on CPU each convolution here is one
    or two `addmm` on a (time, channels) layout, and the first layer's GroupNorm is folded into per-item weights from
    the covariance of the raw-audio windows (no pass over its large output). Outputs match HuBERT's to float32
    rounding. Other devices and dtypes, autocast, gradient checkpointing and `fast_cpu_path = False` run HuBERT's code.
    """

    def __init__(self, config):
        super().__init__(config)
        self.fast_cpu_path = True

    def forward(self, input_values):
        if not _fast_cpu_path(self, input_values):
            return super().forward(input_values)
        return self.frames(input_values).transpose(1, 2)

    def frames(self, input_values):
        """Features as `(batch, frames, channels)`, a view of time-major storage."""
        batch_size, samples = input_values.shape
        total_stride = 1
        for layer in self.conv_layers:
            total_stride *= layer.conv.stride[0]
        rows_per_item = samples + (-samples % total_stride)
        length = samples
        frames = None
        for layer in self.conv_layers:
            kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
            rows_per_item //= stride
            length = (length - kernel) // stride + 1
            if frames is None:
                frames = self._first_layer(layer, input_values, rows_per_item, length)
            else:
                frames = _strided_conv_on_frames(frames, layer.conv.weight, layer.conv.bias, stride)
                if not isinstance(layer, HubertGroupNormConvLayer) and hasattr(layer, "layer_norm"):
                    frames = layer.layer_norm(frames)
            frames = _activation(layer.activation, frames)
        return frames.view(batch_size, rows_per_item, -1)[:, :length]

    @staticmethod
    def _first_layer(layer, input_values, rows_per_item, length):
        """The first convolution (one input channel) as one matmul on audio windows, with its norm for GroupNorm."""
        conv = layer.conv
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        padded = F.pad(input_values, (0, rows_per_item * stride - input_values.shape[1] + kernel - stride))
        windows = padded.unfold(1, kernel, stride)  # (batch, rows_per_item, kernel)
        weight = conv.weight[:, 0, :]
        bias = conv.bias if conv.bias is not None else weight.new_zeros(weight.shape[0])
        if isinstance(layer, HubertGroupNormConvLayer):
            # GroupNorm with one channel per group normalises each channel of each item over time. The channel is a
            # linear function of the window, so its mean and variance follow from the windows' mean and covariance.
            real = windows[:, :length].double()
            window_mean = real.mean(dim=1)
            centred = real - window_mean[:, None]
            covariance = centred.transpose(1, 2) @ centred / length
            weight64 = weight.double()
            variance = torch.einsum("ck,bkl,cl->bc", weight64, covariance, weight64)
            scale = layer.layer_norm.weight.double() * torch.rsqrt(variance + layer.layer_norm.eps)
            shift = layer.layer_norm.bias.double() - window_mean @ weight64.t() * scale  # conv bias cancels out
            weight = (weight64 * scale[..., None]).to(input_values.dtype)  # (batch, channels, kernel)
            bias = shift.to(input_values.dtype)
        else:
            weight = weight.expand(input_values.shape[0], -1, -1)
            bias = bias.expand(input_values.shape[0], -1)
        # the bias rides along as an extra input column of ones: one bmm writes the output once
        ones = windows.new_ones(*windows.shape[:2], 1)
        weight_and_bias = torch.cat([weight, bias[..., None]], dim=2)
        output = torch.bmm(torch.cat([windows, ones], dim=2), weight_and_bias.transpose(1, 2))
        if not isinstance(layer, HubertGroupNormConvLayer) and hasattr(layer, "layer_norm"):
            output = layer.layer_norm(output)
        return output.flatten(0, 1)


class AlHubertPositionalConvEmbedding(HubertPositionalConvEmbedding):
    """HuBERT's positional convolution (same weights); on CPU in float32 a channels-last `conv2d`, which oneDNN runs
    faster than the channels-first grouped `conv1d` (same conditions as `AlHubertFeatureEncoder`)."""

    def __init__(self, config):
        super().__init__(config)
        self.fast_cpu_path = True

    def forward(self, hidden_states):
        if self.batch_norm is not None or not _fast_cpu_path(self, hidden_states):
            return super().forward(hidden_states)
        conv = self.conv
        weight = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        # (batch, time, channels) is already a channels-last (batch, channels, 1, time) image: no copy
        image = hidden_states.contiguous().transpose(1, 2).unsqueeze(2)
        output = F.conv2d(image, weight, conv.bias, padding=(0, conv.padding[0]), groups=conv.groups).squeeze(2)
        return self.activation(self.padding(output)).transpose(1, 2)


class AlHubertEncoderMixin:
    """Applies the `num_hidden_groups` distinct layers `num_hidden_layers` times, in the configured order."""

    layer_class: type[nn.Module]

    def __init__(self, config):
        nn.Module.__init__(self)
        self.config = config
        self.pos_conv_embed = AlHubertPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList([self.layer_class(config) for _ in range(config.num_hidden_groups)])
        self.gradient_checkpointing = False

    def forward(self, hidden_states, attention_mask=None, depth=None, **kwargs):
        depth = depth or self.config.num_hidden_layers
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

        synced_gpus = is_deepspeed_zero3_enabled() or is_fsdp_managed_module(self)
        for application in range(depth):
            if self.training and self.config.layerdrop > 0.0 and not synced_gpus:
                if torch.rand([]) < self.config.layerdrop:
                    continue
            layer = self.layers[self.config.distinct_layer_index(application)]
            hidden_states = layer(hidden_states, attention_mask=attention_mask, **kwargs)

        if self.config.do_stable_layer_norm and depth == self.config.num_hidden_layers:
            hidden_states = self.layer_norm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)


class AlHubertEncoder(AlHubertEncoderMixin, HubertEncoder):
    """Post-LN encoder (HuBERT Base order) with shared layers."""

    layer_class = HubertEncoderLayer


class AlHubertEncoderStableLayerNorm(AlHubertEncoderMixin, HubertEncoderStableLayerNorm):
    """Pre-LN encoder (HuBERT Large order, `do_stable_layer_norm=True`) with shared layers."""

    layer_class = HubertEncoderLayerStableLayerNorm


def default_feature_extractor(config: AlHubertConfig) -> Wav2Vec2FeatureExtractor:
    """The 16 kHz feature extractor that matches `config` (normalisation as trained; attention masks always)."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=config.do_normalize,
        return_attention_mask=True,
    )


class AlHubertPreTrainedModel(HubertPreTrainedModel):
    """Base class of the ALHuBERT models: weight initialisation, remote-code saving and input checks."""

    config: AlHubertConfig
    config_class = AlHubertConfig
    base_model_prefix = "alhubert"
    # What `save_pretrained` writes into config.json so that the Auto classes find this model's remote code.
    remote_code_auto_map = ALHUBERT_AUTO_MAP

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as HuBERT does, plus the remote-code files, a full `auto_map` and a matching feature extractor.

        A `preprocessor_config.json` already in `save_directory` (for example a processor with a tokenizer) is kept.
        """
        self.config.auto_map = dict(self.remote_code_auto_map)
        super().save_pretrained(save_directory, *args, **kwargs)
        is_main_process = kwargs.get("is_main_process", True)
        if is_main_process and not os.path.exists(os.path.join(save_directory, "preprocessor_config.json")):
            default_feature_extractor(self.config).save_pretrained(save_directory)

    def _check_inputs(self, input_values, attention_mask):
        if not torch.is_tensor(input_values) or input_values.dim() != 2 or not input_values.is_floating_point():
            described = (
                f"a {input_values.dim()}-D {input_values.dtype} tensor" if torch.is_tensor(input_values)
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
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_values.shape):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but input_values has shape "
                f"{tuple(input_values.shape)}; they must match (1 for real samples, 0 for padding)."
            )
        if attention_mask is not None:
            self._check_attention_mask(attention_mask)
        if not torch.compiler.is_compiling() and not torch.isfinite(input_values).all():
            raise ValueError("input_values contains NaN or infinite samples; clean the audio before the model.")


    @staticmethod
    def _check_attention_mask(attention_mask):
        """Refuse masks HuBERT would misread: values other than 0/1, or padding before real samples (left padding).

        HuBERT derives each item's frame count from the number of ones, so it assumes right padding. (One host sync
        on accelerators, as the NaN check.)
        """
        if not torch.is_tensor(attention_mask) or attention_mask.is_complex():
            raise ValueError(
                f"attention_mask must be a tensor of 0/1 (or bool) values, got {type(attention_mask).__name__}."
            )
        if torch.compiler.is_compiling() or attention_mask.numel() == 0:
            return
        if attention_mask.dtype != torch.bool:
            if not ((attention_mask == 0) | (attention_mask == 1)).all():
                raise ValueError(
                    "attention_mask must hold only 0 (padding) and 1 (real sample); found other values. "
                    "Use the mask a Wav2Vec2FeatureExtractor returns."
                )
            attention_mask = attention_mask != 0
        if (attention_mask[:, 1:] & ~attention_mask[:, :-1]).any():
            raise ValueError(
                "attention_mask has padding before real samples (left padding or gaps); ALHuBERT, like HuBERT, needs "
                "each item's real samples first and its padding at the end (right padding, as Wav2Vec2FeatureExtractor "
                "pads)."
            )

    def _get_feat_extract_output_lengths(self, input_lengths, add_adapter=None):
        """Output frames of the feature encoder for `input_lengths` samples, never negative.

        HuBERT's formula goes negative for items shorter than the receptive field (and its attention mask then
        indexes from the end); here each convolution's output length is clamped at 0.
        """
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride):
            if torch.is_tensor(input_lengths):
                input_lengths = (torch.div(input_lengths - kernel, stride, rounding_mode="floor") + 1).clamp(min=0)
            else:
                input_lengths = max((input_lengths - kernel) // stride + 1, 0)
        return input_lengths

    def _get_feature_vector_attention_mask(self, feature_vector_length, attention_mask, add_adapter=None):
        """Frame mask (batch, frames), True for real frames; an item shorter than the receptive field has none."""
        lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1)).to(torch.long)
        frames = torch.arange(feature_vector_length, device=attention_mask.device)
        return frames[None, :] < lengths[:, None]


class AlHubertModel(AlHubertPreTrainedModel, HubertModel):
    """The bare ALHuBERT encoder, returning hidden states (one per layer application)."""

    def __init__(self, config: AlHubertConfig):
        AlHubertPreTrainedModel.__init__(self, config)
        self.config = config
        self.feature_extractor = AlHubertFeatureEncoder(config)
        self.feature_projection = HubertFeatureProjection(config)
        if config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0:
            self.masked_spec_embed = nn.Parameter(torch.Tensor(config.hidden_size).uniform_())
        if config.do_stable_layer_norm:
            self.encoder = AlHubertEncoderStableLayerNorm(config)
        else:
            self.encoder = AlHubertEncoder(config)
        self.post_init()

    def set_fast_cpu_path(self, enabled: bool):
        """Turn the float32 CPU fast paths of the convolutions on (default) or off (HuBERT's exact arithmetic)."""
        for module in self.modules():
            if hasattr(module, "fast_cpu_path"):
                module.fast_cpu_path = enabled

    def freeze_feature_encoder(self):
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
        **kwargs,
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
        if input_values.dtype != self.dtype:
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
        encoder_outputs = self.encoder(hidden_states, attention_mask=attention_mask, depth=depth, **kwargs)
        return BaseModelOutput(last_hidden_state=encoder_outputs.last_hidden_state)


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

    @property
    def hubert(self):
        # HuBERT's inherited heads call `self.hubert`; here the encoder is stored as `self.alhubert`.
        return self.alhubert


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

    @property
    def hubert(self):
        return self.alhubert

    @can_return_tuple
    @filter_output_hidden_states
    def forward(self, input_values, attention_mask=None, labels=None, **kwargs) -> SequenceClassifierOutput:
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


AlHubertConfig.register_for_auto_class()
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
