# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""A CPU fast path for HuBERT's convolutions in float32 and native bfloat16, attached from outside the model.

oneDNN runs HuBERT's channels-first strided `conv1d`s well below matmul speed. `use_fast_cpu_path(model)` gives every
`HubertFeatureEncoder` and `HubertPositionalConvEmbedding` inside `model` (ALHuBERT, or a plain `HubertModel` such as
a distillation teacher) a forward that computes the same function faster on CPU:

- the feature encoder as one or two `addmm` per convolution on a (time, channels) layout, the first layer's GroupNorm
  folded into per-item weights from the covariance of the raw-audio windows (no pass over its large output);
- the positional convolution as a channels-last `conv2d` in float32; in bfloat16 as one batched matmul per group on
  the windows of the input (torch's bf16 grouped convolution kernels give wrong results for some shapes on some CPUs,
  and are slower).

In native bfloat16 (bf16 weights and inputs) every matmul accumulates in float32 and rounds its output once, and the
GroupNorm statistics are computed in float64 from the audio windows; no tensor is cast per operator.

Modules and weights are unchanged (the state dict is HuBERT's); outputs match HuBERT's to float32 (bf16) rounding. On
other devices and dtypes, for inputs whose dtype differs from the weights', under autocast and with gradient
checkpointing HuBERT's own forward runs; `enabled=False` restores it everywhere. Like Transformers' hub kernels, this
keeps the model file to the architecture; it ships with the remote code and imports only torch and transformers.
"""

import math
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from transformers.activations import GELUActivation
from transformers.models.hubert.modeling_hubert import (
    HubertFeatureEncoder,
    HubertGroupNormConvLayer,
    HubertPositionalConvEmbedding,
)


def use_fast_cpu_path(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Attach (`enabled=True`) or detach the CPU fast path (float32 and bfloat16) of every HuBERT convolution module
    in `model`."""
    for module in model.modules():
        if isinstance(module, HubertFeatureEncoder):
            fast_forward = _feature_encoder_forward
        elif isinstance(module, HubertPositionalConvEmbedding):
            fast_forward = _positional_conv_forward
        else:
            continue
        if enabled:
            module.forward = partial(fast_forward, module)  # an instance attribute: picklable, copied by deepcopy
        else:
            module.__dict__.pop("forward", None)  # back to the class's (HuBERT's) forward
    return model


def uses_fast_cpu_path(module: nn.Module) -> bool:
    """Whether `module` has the fast path attached (it still runs only for float32 or bfloat16 CPU tensors)."""
    forward = module.__dict__.get("forward")
    return getattr(forward, "func", None) in (_feature_encoder_forward, _positional_conv_forward)


def _applies(module, tensor) -> bool:
    return (
        tensor.device.type == "cpu"
        and tensor.dtype in (torch.float32, torch.bfloat16)
        and tensor.dtype == next(module.parameters()).dtype
        and not torch.is_autocast_enabled("cpu")
        and not (module.training and getattr(module, "gradient_checkpointing", False))
    )


def _feature_encoder_forward(self, input_values):
    if not _applies(self, input_values):
        return type(self).forward(self, input_values)
    return feature_encoder_frames(self, input_values).transpose(1, 2)


def _positional_conv_forward(self, hidden_states):
    if self.batch_norm is not None or not _applies(self, hidden_states):
        return type(self).forward(self, hidden_states)
    conv = self.conv
    if hidden_states.dtype == torch.bfloat16:
        output = grouped_conv_on_frames(hidden_states, conv.weight, conv.bias, conv.padding[0], conv.groups)
        return self.activation(output)
    weight = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    # (batch, time, channels) is already a channels-last (batch, channels, 1, time) image: no copy
    image = hidden_states.contiguous().transpose(1, 2).unsqueeze(2)
    output = F.conv2d(image, weight, conv.bias, padding=(0, conv.padding[0]), groups=conv.groups).squeeze(2)
    return self.activation(self.padding(output)).transpose(1, 2)


def feature_encoder_frames(encoder: HubertFeatureEncoder, input_values: torch.Tensor) -> torch.Tensor:
    """The feature encoder's output as `(batch, frames, channels)`, a view of time-major storage."""
    batch_size, samples = input_values.shape
    total_stride = math.prod(layer.conv.stride[0] for layer in encoder.conv_layers)
    rows_per_item = samples + (-samples % total_stride)
    length = samples
    frames = None
    for layer in encoder.conv_layers:
        kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
        rows_per_item //= stride
        length = (length - kernel) // stride + 1
        if frames is None:
            frames = _first_layer(layer, input_values, rows_per_item, length)
        else:
            frames = _strided_conv_on_frames(frames, layer.conv.weight, layer.conv.bias, stride)
        if not isinstance(layer, HubertGroupNormConvLayer) and hasattr(layer, "layer_norm"):
            frames = layer.layer_norm(frames)  # HuBERT's "layer" feat_extract_norm (the GroupNorm is folded in)
        frames = _activation(layer.activation, frames)
    return frames.view(batch_size, rows_per_item, -1)[:, :length]


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


def grouped_conv_on_frames(
    frames: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: int,
    groups: int,
    block_elements: int = 1 << 24,
) -> torch.Tensor:
    """HuBERT's positional convolution (`conv1d`, stride 1, `padding` on both sides, `groups` groups) of `frames`
    `(batch, time, channels)`, returning `(batch, time, channels)`: the first `time` outputs, as `HubertSamePadLayer`
    keeps them for an even kernel (an odd kernel gives exactly `time`).

    Each group is one matmul of the input windows `(time steps, kernel x group channels)` with the group's taps, so
    every output is one dot product accumulated in float32 and rounded once. The windows are views of a group-major
    copy of the input, materialised `block_elements` at a time (bounded memory).
    """
    batch_size, length, channels = frames.shape
    out_channels, group_channels, kernel = weight.shape
    group_out = out_channels // groups
    padded_length = length + 2 * padding
    outputs = min(length, padded_length - kernel + 1)
    # (groups, batch, padded time, group channels): a window of `kernel` steps is `kernel * group_channels`
    # consecutive elements
    grouped = F.pad(frames, (0, 0, padding, padding)).view(batch_size, padded_length, groups, group_channels)
    grouped = grouped.permute(2, 0, 1, 3).contiguous()
    windows = grouped.as_strided(
        (groups, batch_size, outputs, kernel * group_channels),
        (batch_size * padded_length * group_channels, padded_length * group_channels, group_channels, 1),
    )
    # taps[g] has one row per (tap, input channel), in the windows' order
    taps = weight.view(groups, group_out, group_channels, kernel).permute(0, 3, 2, 1)
    taps = taps.reshape(groups, kernel * group_channels, group_out)
    result = frames.new_empty(groups, batch_size, outputs, group_out)
    step = max(1, block_elements // (groups * batch_size * kernel * group_channels))
    for start in range(0, outputs, step):
        stop = min(start + step, outputs)
        block = windows[:, :, start:stop].reshape(groups, batch_size * (stop - start), -1)
        if bias is None:
            product = torch.bmm(block, taps)
        else:
            product = torch.baddbmm(bias.view(groups, 1, group_out), block, taps)
        result[:, :, start:stop] = product.view(groups, batch_size, stop - start, group_out)
    return result.permute(1, 2, 0, 3).reshape(batch_size, outputs, out_channels)


def _activation(activation, frames):
    """`activation(frames)`, in place for exact GELU when no gradient flows (no second copy of large outputs)."""
    if not frames.requires_grad and isinstance(activation, GELUActivation) and activation.act is F.gelu:
        return torch.ops.aten.gelu_(frames)
    return activation(frames)


def _first_layer(layer, input_values, rows_per_item, length):
    """The first convolution (one input channel) as one matmul on audio windows, with its GroupNorm folded in."""
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
    return output.flatten(0, 1)


__all__ = ["feature_encoder_frames", "grouped_conv_on_frames", "use_fast_cpu_path", "uses_fast_cpu_path"]
