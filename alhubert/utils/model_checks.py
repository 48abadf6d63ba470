# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Checks that a loaded model is whole and usable, shared by the converter, `alhubert extract` / `info` and the
ONNX export: no weight left at its random initialisation, and finite outputs (weights that are finite but huge, such
as x 1e30, give NaN features while every weight passes a NaN check)."""

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import torch
    from transformers import FeatureExtractionMixin, PretrainedConfig


def refuse_missing_weights(missing_keys: list[str], config: "PretrainedConfig", source: str) -> None:
    """Raise a `ValueError` when an ALHuBERT model loaded from `source` lacks weights (`missing_keys` of
    `from_pretrained(..., output_loading_info=True)`): Transformers fills them with random values and only reports
    them, which would give silently wrong features."""
    if not missing_keys or not str(getattr(config, "model_type", "")).startswith("alhubert"):
        return
    names = sorted(missing_keys)
    raise ValueError(
        f"The model in {source} lacks {len(names)} weight(s) its config needs ({', '.join(names[:4])}"
        f"{' ...' if len(names) > 4 else ''}); they would be random. The weights file is incomplete or belongs to "
        "another config: save or download the model again."
    )


def missing_saved_weights(model_dir: str | os.PathLike, config: "PretrainedConfig") -> list[str]:
    """Weights an ALHuBERT `config` needs that the safetensors files in `model_dir` lack, found from the files'
    headers and a model built without storage (nothing is loaded or allocated)."""
    import torch
    from safetensors import safe_open

    import alhubert

    architecture = (getattr(config, "architectures", None) or ["AlHubertModel"])[0]
    model_class = getattr(alhubert, architecture, None) or alhubert.AlHubertModel
    with torch.device("meta"):
        expected = set(model_class(config).state_dict())
    saved = set()
    for weights_file in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(weights_file, framework="pt") as weights:
            saved.update(weights.keys())
    # saved with or without the base model's prefix, as Transformers reads them
    prefix = f"{model_class.base_model_prefix}."
    saved |= {prefix + key for key in saved} | {key.removeprefix(prefix) for key in saved}
    ignored = getattr(model_class, "_keys_to_ignore_on_load_missing", None) or []
    return sorted(key for key in expected - saved if not any(re.search(pattern, key) for pattern in ignored))


def refuse_non_boolean_flags(feature_extractor: "FeatureExtractionMixin", source: str) -> None:
    """Raise a `ValueError` when a feature extractor's switches are not booleans (`"do_normalize": "no"` in a
    preprocessor_config.json would otherwise read as true)."""
    for name in ("do_normalize", "return_attention_mask"):
        value = getattr(feature_extractor, name, False)
        if not isinstance(value, bool):
            raise ValueError(
                f"The preprocessor_config.json of {source} sets {name} to {value!r}, not true or false (a JSON "
                "boolean); fix the file."
            )


def refuse_non_finite_outputs(model: "torch.nn.Module", source: str) -> None:
    """Raise a `ValueError` naming `source` and the largest weight when `model` (eval mode) gives NaN or infinite
    outputs for one second of low-level noise."""
    import torch

    samples = max(16000, getattr(model.config, "receptive_field", 400))
    noise = 0.1 * torch.randn(1, samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = model(noise.to(device=model.device, dtype=model.dtype), output_hidden_states=True)
    values = [value for value in outputs.values() if torch.is_tensor(value)]
    values += list(outputs.get("hidden_states") or ())
    if all(bool(torch.isfinite(value).all()) for value in values):
        return
    name, largest = max(
        (
            (name, float(parameter.detach().abs().max()))
            for name, parameter in model.named_parameters()
            if parameter.numel()
        ),
        key=lambda item: item[1] if math.isfinite(item[1]) else math.inf,
    )
    raise ValueError(
        f"The model from {source} gives NaN or infinite outputs for ordinary audio: its weights overflow float32 "
        f"(largest |weight| {largest:.3g}, in {name}). They are damaged or were saved after training diverged; use "
        "an earlier checkpoint."
    )


__all__ = ["missing_saved_weights", "refuse_missing_weights", "refuse_non_boolean_flags", "refuse_non_finite_outputs"]
