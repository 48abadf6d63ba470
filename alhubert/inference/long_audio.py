# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Feature extraction from recordings of any length in bounded memory: overlapping windows, batched, stitched.

As with `chunk_length_s` / `stride_length_s` in Transformers' speech recognition pipeline, the model never sees more
than `chunk_length_s` seconds at once, and from each window the first and last `stride_length_s` seconds of output
frames are dropped (except at the recording's edges), so every output frame has at least that much context on both
sides. Windows are cut on the feature encoder's frame grid (320 samples at 16 kHz): the stitched output has as many
frames as one pass over the whole recording, and a recording no longer than `chunk_length_s` gives exactly the
unchunked features. At most `batch_size` windows run at once, so activation memory does not grow with the recording;
the waveform and the output features (frames x hidden_size floats) are held in full.
"""

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedModel, SequenceFeatureExtractor

from ..models.configuration_alhubert import receptive_field
from ..models.pipeline_audio_features import layer_features


@dataclass(frozen=True)
class Window:
    """One model call: input frames `[start, end)` of the recording, of which `[keep_start, keep_end)` are kept."""

    start: int
    end: int
    keep_start: int
    keep_end: int


def num_frames(num_samples: int, config: PretrainedConfig) -> int:
    """Number of output frames the convolutional feature encoder gives for `num_samples` input samples."""
    frames = num_samples
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        frames = (frames - kernel) // stride + 1
    return max(frames, 0)


def plan_windows(total_frames: int, chunk_frames: int, context_frames: int) -> list[Window]:
    """Cover frames `[0, total_frames)` with windows of at most `chunk_frames` frames overlapping by `2 *
    context_frames`."""
    if chunk_frames <= 2 * context_frames:
        raise ValueError(
            f"The chunk ({chunk_frames} frames) must be longer than twice the stride ({context_frames} frames on each "
            "side); use a longer chunk_length_s or a shorter stride_length_s."
        )
    if total_frames <= chunk_frames:
        return [Window(0, total_frames, 0, total_frames)]
    windows = []
    keep_start = 0
    while keep_start < total_frames:
        start = max(keep_start - context_frames, 0)
        end = min(start + chunk_frames, total_frames)
        keep_end = end if end == total_frames else end - context_frames
        windows.append(Window(start, end, keep_start, keep_end))
        keep_start = keep_end
    return windows


class LongAudioFeatureExtractor:
    """Hidden states of one layer of a speech encoder for recordings of any length, in bounded memory (`layer=None`:
    `last_hidden_state`; an integer `k`: `hidden_states[k]`, 0 = encoder input)."""

    def __init__(
        self,
        model: PreTrainedModel,
        feature_extractor: SequenceFeatureExtractor,
        layer: int | None = None,
        chunk_length_s: float = 30.0,
        stride_length_s: float = 5.0,
        batch_size: int = 8,
    ):
        config = model.config
        if layer is not None and (
            isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= config.num_hidden_layers
        ):
            raise ValueError(
                f"layer must be between 0 and {config.num_hidden_layers} (the model has {config.num_hidden_layers} "
                f"layer applications; 0 is the encoder input), got {layer!r}."
            )
        if not stride_length_s >= 0:
            raise ValueError(f"stride_length_s must be 0 or more seconds, got {stride_length_s}.")
        if not chunk_length_s > 0:
            raise ValueError(f"chunk_length_s must be a positive number of seconds, got {chunk_length_s}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.layer = layer
        self.batch_size = batch_size
        self.sampling_rate = feature_extractor.sampling_rate
        self.hop = math.prod(config.conv_stride)
        self.receptive_field = receptive_field(config)
        self.chunk_frames = int(chunk_length_s * self.sampling_rate) // self.hop
        self.context_frames = int(stride_length_s * self.sampling_rate) // self.hop
        plan_windows(0, self.chunk_frames, self.context_frames)  # validates the chunk and stride lengths
        # GroupNorm in the first convolution normalises over the whole input: padding would change the features.
        self.equal_lengths_only = getattr(config, "feat_extract_norm", "group") == "group"

    def _samples(self, window: Window, total_frames: int) -> slice:
        if window.end == total_frames:  # the last window keeps the recording's tail, as one pass over it would
            return slice(window.start * self.hop, None)
        return slice(window.start * self.hop, (window.end - 1) * self.hop + self.receptive_field)

    @torch.no_grad()
    def _run(self, batch):
        """Run a batch of `(index, window, input_values)` and return the kept frames of each window."""
        padded = self.feature_extractor.pad(
            {"input_values": [values for _, _, values in batch]}, return_tensors="pt", return_attention_mask=True
        )
        device = self.model.device
        input_values = padded["input_values"].to(device=device, dtype=self.model.dtype)
        lengths = {len(values) for _, _, values in batch}
        kwargs = {"attention_mask": padded["attention_mask"].to(device)} if len(lengths) > 1 else {}
        features = layer_features(self.model, self.layer, input_values=input_values, **kwargs).float().cpu().numpy()
        return [
            features[row, window.keep_start - window.start : window.keep_end - window.start]
            for row, (_, window, _) in enumerate(batch)
        ]

    def __call__(self, waveforms: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(index, features of shape (frames, hidden_size))` for each 1-D waveform (at the feature extractor's
        rate) as soon as it is done; waveforms given in order of length waste the least padding."""
        outputs, remaining, pending = {}, {}, []
        for index, waveform in enumerate(waveforms):
            waveform = np.asarray(waveform, dtype=np.float32)
            if waveform.ndim != 1:
                raise ValueError(f"Waveform {index} must be 1-D (mono samples), got shape {waveform.shape}.")
            if len(waveform) < self.receptive_field:
                raise ValueError(
                    f"Waveform {index} has {len(waveform)} samples, fewer than the {self.receptive_field} the model "
                    "needs for one frame; drop or pad such short audio."
                )
            if getattr(self.feature_extractor, "do_normalize", False):  # over the whole recording, as in one pass
                [waveform] = self.feature_extractor.zero_mean_unit_var_norm([waveform], attention_mask=None)
            total = num_frames(len(waveform), self.model.config)
            windows = plan_windows(total, self.chunk_frames, self.context_frames)
            outputs[index] = np.empty((total, self.model.config.hidden_size), dtype=np.float32)
            remaining[index] = len(windows)
            # windows are views into the waveform; only a batch of windows is ever copied
            pending += [(index, window, waveform[self._samples(window, total)]) for window in windows]
            while len(pending) >= self.batch_size:
                batch, pending = self._next_batch(pending)
                yield from self._store(batch, outputs, remaining)
        while pending:
            batch, pending = self._next_batch(pending)
            yield from self._store(batch, outputs, remaining)

    def _next_batch(self, pending):
        """Split off the longest windows; with a group-normalised feature encoder, only windows of equal length."""
        pending = sorted(pending, key=lambda item: len(item[2]), reverse=True)
        size = self.batch_size
        if self.equal_lengths_only:
            longest = len(pending[0][2])
            size = min(size, sum(1 for item in pending if len(item[2]) == longest))
        return pending[:size], pending[size:]

    def _store(self, batch, outputs, remaining):
        for (index, window, _), kept in zip(batch, self._run(batch)):
            outputs[index][window.keep_start : window.keep_end] = kept
            remaining[index] -= 1
            if remaining[index] == 0:
                del remaining[index]
                yield index, outputs.pop(index)


def extract_long_features(
    model: PreTrainedModel,
    feature_extractor: SequenceFeatureExtractor,
    waveform: np.ndarray,
    layer: int | None = None,
    chunk_length_s: float = 30.0,
    stride_length_s: float = 5.0,
    batch_size: int = 8,
) -> np.ndarray:
    """Features of one recording of any length (1-D waveform at the feature extractor's rate), (frames,
    hidden_size)."""
    extractor = LongAudioFeatureExtractor(model, feature_extractor, layer, chunk_length_s, stride_length_s, batch_size)
    [(_, features)] = list(extractor([waveform]))
    return features


__all__ = ["LongAudioFeatureExtractor", "Window", "extract_long_features", "num_frames", "plan_windows"]
