# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Preparing a saved ALHuBERT model for the Hugging Face Hub: a load check, then a staging folder to upload.

The staged folder holds the weights, config (with `auto_map` and the `"audio-feature-extraction"` custom pipeline),
feature extractor or processor files, the remote-code modules and a model card, so that Hub users need only
Transformers and `trust_remote_code=True`.
"""

import fnmatch
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoFeatureExtractor
from transformers.utils import logging

from ..models import REMOTE_CODE_FILES
from ..models.configuration_alhubert import AlHubertConfig
from ..models.model_folder import CUSTOM_PIPELINES, PREPROCESSING_FILES, complete_model_folder
from .model_cards import saved_eval_results, write_card_for_folder, write_model_card


logger = logging.get_logger(__name__)

# What `save_pretrained` of the model, its feature extractor, tokenizer or processor writes; nothing else (training
# state, logs, checkpoints) is uploaded.
UPLOAD_PATTERNS = (
    "config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    *PREPROCESSING_FILES,
    "README.md",
)
# ONNX weights in the Hub's layout (`alhubert export onnx`), uploaded as the `onnx/` folder when the model has one.
ONNX_UPLOAD_PATTERNS = ("*.onnx", "*.onnx_data")


def check_model_dir(model_dir) -> str:
    """Load `model_dir` like a user would and run one second of audio through it; return a one-line summary."""
    return _check_model_dir(model_dir)[0]


def _check_model_dir(model_dir):
    """`check_model_dir`, also returning the model class.

    Raises `FileNotFoundError` for missing files and `ValueError` when the files do not make a working model.
    """
    from ..models.registration import ARCHITECTURES  # the model code: imported when a folder is checked, not for --help

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"Model directory not found: {model_dir}")
    for required in ("config.json", "preprocessor_config.json"):
        if not (model_dir / required).is_file():
            raise FileNotFoundError(
                f"{model_dir} has no {required}; save the model (and its feature extractor) with save_pretrained."
            )
    if not any(model_dir.glob("*.safetensors")):
        raise FileNotFoundError(f"{model_dir} has no *.safetensors weights; save the model with save_pretrained.")
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except Exception as error:
        raise ValueError(f"{model_dir}/config.json does not load: {error}") from error
    if not isinstance(config, AlHubertConfig):
        raise ValueError(f"{model_dir} holds a {type(config).__name__}, not an ALHuBERT model (model_type 'alhubert').")
    architecture = (config.architectures or ["AlHubertModel"])[0]
    model_class = ARCHITECTURES.get(architecture)
    if model_class is None:
        raise ValueError(f"{model_dir}/config.json names an unknown architecture {architecture!r}.")
    try:
        model, loading_info = model_class.from_pretrained(model_dir, output_loading_info=True)
    except Exception as error:
        raise ValueError(f"The weights in {model_dir} do not load into {architecture}: {error}") from error
    broken = {kind: keys for kind, keys in loading_info.items() if kind in ("missing_keys", "mismatched_keys") and keys}
    if broken:
        raise ValueError(f"The weights in {model_dir} do not match the config: {broken}. Re-save the model.")
    feature_extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    waveform = np.random.default_rng(0).standard_normal(feature_extractor.sampling_rate).astype(np.float32)
    inputs = feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        output = model.eval()(**inputs)[0]
    if not torch.isfinite(output).all():
        raise ValueError(f"The model in {model_dir} outputs NaN or infinite values for one second of noise.")
    return (f"{architecture}: {config.num_hidden_groups} distinct layers x {config.num_hidden_layers} applications",
            model_class)


def stage_for_upload(model_dir, staging_dir, repo_id: str | None = None) -> list[str]:
    """Check `model_dir`, then copy into the new folder `staging_dir` everything a Hub repository needs.

    The config gains `auto_map` and the custom pipeline, the remote-code modules come from this package, ONNX files
    in `model_dir/onnx/` are staged as `onnx/`, and a model card is written when `model_dir` has no README.md.
    Returns the staged file (and folder) names.
    """
    model_dir, staging_dir = Path(model_dir), Path(staging_dir)
    if staging_dir.exists() and any(staging_dir.iterdir()):
        raise FileExistsError(f"Staging folder {staging_dir} is not empty; choose a new or empty folder.")
    summary, model_class = _check_model_dir(model_dir)
    logger.info("Load check passed: %s", summary)
    staging_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and any(fnmatch.fnmatch(path.name, pattern) for pattern in UPLOAD_PATTERNS):
            shutil.copy2(path, staging_dir / path.name)
    onnx_files = [path for path in sorted((model_dir / "onnx").glob("*")) if path.is_file()
                  and any(fnmatch.fnmatch(path.name, pattern) for pattern in ONNX_UPLOAD_PATTERNS)]
    if onnx_files:
        (staging_dir / "onnx").mkdir()
        for path in onnx_files:
            shutil.copy2(path, staging_dir / "onnx" / path.name)
    if (staging_dir / "README.md").exists():
        write_card_for_folder(staging_dir, model_id=repo_id)
    else:
        write_model_card(staging_dir, AutoConfig.from_pretrained(staging_dir), model_id=repo_id,
                         eval_results=saved_eval_results(model_dir))
    # the same completion as save_pretrained: remote code, auto_map of the folder's model type, custom pipeline
    complete_model_folder(staging_dir, auto_map=model_class.remote_code_auto_map)
    return sorted(path.name for path in staging_dir.iterdir())


def upload_staged(staging_dir, repo_id: str, private: bool = False, revision: str | None = None, token=None) -> str:
    """Create (or reuse) the model repository `repo_id` and upload the staged folder in one commit; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=staging_dir,
        revision=revision,
        commit_message="Upload ALHuBERT model",
    )
    return getattr(commit, "commit_url", None) or str(repo_url)


__all__ = ["CUSTOM_PIPELINES", "REMOTE_CODE_FILES", "check_model_dir", "stage_for_upload", "upload_staged"]
