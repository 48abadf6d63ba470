# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The `"audio-feature-extraction"` pipeline: audio in, hidden states of a speech encoder out.

Transformers' `"feature-extraction"` pipeline is text-only. This one takes a file path, a 1-D numpy array at the
feature extractor's sampling rate, or a `{"array", "sampling_rate"}` dict (as in `datasets`), and returns the
hidden states of one layer, shape (frames, hidden_size), or of all layers, shape (layers + 1, frames, hidden_size).
It imports only numpy, torch, transformers and its sibling `audio.py`, so it can ship as Hub remote code.
`pipeline(..., dtype=torch.bfloat16)` runs the model's native bf16 path (the features come back as float32).
"""

import inspect

import numpy as np
import torch
from transformers import Pipeline

from .audio import load_audio, resample


def layer_features(model: torch.nn.Module, layer: int | None, **inputs: torch.Tensor) -> torch.Tensor:
    """`last_hidden_state` (`layer=None`) or `hidden_states[layer]` (0 = encoder input) of `model` for `inputs`."""
    if layer is None:
        return model(**inputs).last_hidden_state
    if "depth" in inspect.signature(model.forward).parameters:
        inputs["depth"] = max(layer, 1)  # elastic depth: skip the layer applications above the one asked for
    return model(**inputs, output_hidden_states=True).hidden_states[layer]


class AudioFeatureExtractionPipeline(Pipeline):
    """Extract hidden states from raw audio with any speech encoder that returns `hidden_states`.

    Call arguments: `layer` (int: that entry of `hidden_states`, 0 = encoder input; `"all"`: every entry stacked;
    default: `last_hidden_state`).
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False

    def _sanitize_parameters(self, layer=None, **kwargs):
        forward_params = {}
        if layer is not None:
            num_layers = self.model.config.num_hidden_layers
            if layer != "all" and (  # a bool is an int in Python: layer=True would silently mean layer 1
                isinstance(layer, bool) or not isinstance(layer, int) or not -num_layers - 1 <= layer <= num_layers
            ):
                raise ValueError(
                    f'layer must be "all" or an integer in [0, {num_layers}] (negative counts from the end), '
                    f"got {layer!r}."
                )
            forward_params["layer"] = layer if layer == "all" or layer >= 0 else num_layers + 1 + layer
        return {}, forward_params, {}

    def preprocess(self, inputs: str | bytes | np.ndarray | dict) -> dict[str, torch.Tensor]:
        sampling_rate = self.feature_extractor.sampling_rate
        source = inputs if isinstance(inputs, str) else "the given waveform"
        if isinstance(inputs, str):
            inputs = load_audio(inputs, sampling_rate)
        elif isinstance(inputs, dict):
            if "sampling_rate" not in inputs or not ("array" in inputs or "raw" in inputs):
                raise ValueError('A dict input needs "array" (or "raw") and "sampling_rate" keys.')
            # resample checks the sampling rate
            inputs = resample(inputs.get("array", inputs.get("raw")), inputs["sampling_rate"], sampling_rate)
        elif isinstance(inputs, torch.Tensor):
            inputs = inputs.detach().cpu().numpy()
        if not isinstance(inputs, np.ndarray) or inputs.ndim != 1:
            raise ValueError(
                "Expected a file path, a 1-D waveform (numpy array or tensor) at "
                f"{sampling_rate} Hz, or a dict with 'array' and 'sampling_rate'; got {type(inputs).__name__}"
                + (f" of shape {inputs.shape}" if hasattr(inputs, "shape") else "")
            )
        processed = self.feature_extractor(inputs, sampling_rate=sampling_rate, return_tensors="pt")
        if self.dtype is not None:
            processed["input_values"] = processed["input_values"].to(self.dtype)
        processed["audio_source"] = source  # named in the error when the features are not finite
        return processed

    def _forward(self, model_inputs, layer=None):
        source = model_inputs.pop("audio_source", "the input")
        if layer == "all":
            features = torch.stack(self.model(**model_inputs, output_hidden_states=True).hidden_states, 1)
        else:
            features = layer_features(self.model, layer, **model_inputs)
        if not torch.isfinite(features).all():  # the audio is finite (checked by the model): the weights are at fault
            names = ", ".join(source) if isinstance(source, list) else source
            model = f" {self.model.name_or_path}" if self.model.name_or_path else ""
            raise ValueError(
                f"The features of {names} are NaN or infinite although the audio is finite: the model{model} is "
                "damaged (its weights overflow); use an earlier checkpoint."
            )
        return {"features": features}

    def postprocess(self, model_outputs: dict[str, torch.Tensor]) -> np.ndarray:
        return model_outputs["features"][0].float().cpu().numpy()
