# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Preparing a saved ALHuBERT model for the Hugging Face Hub: a load check, then a staging folder to upload.

The staged folder holds the weights, config (with `auto_map` and the `"audio-feature-extraction"` custom pipeline),
feature extractor or processor files, the remote-code modules and a model card, so that Hub users need only
Transformers and `trust_remote_code=True`. Which of the model folder's files are staged is decided by
`huggingface_hub`'s own pattern filter (`filter_repo_objects`, what `upload_folder(allow_patterns=...)` applies).
"""

import os
import shutil
from pathlib import Path

import numpy as np
import torch
from huggingface_hub.utils import filter_repo_objects
from transformers import AutoConfig, AutoFeatureExtractor
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import logging

from ..models.configuration_alhubert import AlHubertConfig
from ..utils.files import PREPROCESSING_FILES
from .model_cards import saved_eval_results, type_name, write_card_for_folder, write_model_card


logger = logging.get_logger(__name__)

# What `save_pretrained` of the model, its feature extractor, tokenizer or processor writes; nothing else (training
# state, logs, checkpoints, remote code: that comes from this package) is uploaded.
UPLOAD_PATTERNS = ["config.json", "*.safetensors", "model.safetensors.index.json", *PREPROCESSING_FILES, "README.md"]
# ONNX weights in the Hub's layout (`alhubert export onnx`), uploaded as the `onnx/` folder when the model has one.
ONNX_UPLOAD_PATTERNS = ["onnx/*.onnx", "onnx/*.onnx_data"]


def files_to_upload(model_dir: str | os.PathLike) -> list[str]:
    """The files of `model_dir` (top level and `onnx/`) that a Hub repository gets, as paths relative to it; a file
    that is a link out of `model_dir` (its target would be uploaded) is a `ValueError`."""
    model_dir = Path(model_dir)
    top = sorted(path.name for path in model_dir.iterdir())
    onnx = sorted(f"onnx/{path.name}" for path in model_dir.glob("onnx/*"))
    selected = [
        *filter_repo_objects(top, allow_patterns=UPLOAD_PATTERNS),
        *filter_repo_objects(onnx, allow_patterns=ONNX_UPLOAD_PATTERNS),
    ]
    root = model_dir.resolve()
    for name in selected:
        if not (model_dir / name).resolve().is_relative_to(root):
            raise ValueError(
                f"{model_dir / name} is a link to a file outside {model_dir}; copy the file into the "
                "folder (links out of a model folder are never uploaded)."
            )
    return [name for name in selected if (model_dir / name).is_file()]


def _check_model_dir(model_dir):
    """Load `model_dir` like a user would and run one second of audio through it; return a one-line summary and the
    model. Raises `FileNotFoundError` for missing files and `ValueError` when the files do not make a working model.
    """
    # the model code: imported when a folder is checked, not for --help
    from ..models.registration import ARCHITECTURES

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
        raise ValueError(
            f"{model_dir} holds a {type(config).__name__}, not an ALHuBERT model (model_type 'alhubert')."
        )
    architecture = type_name(config)
    model_class = ARCHITECTURES.get(architecture)
    if model_class is None:
        raise ValueError(f"{model_dir}/config.json names an unknown architecture {architecture!r}.")
    try:
        model, loading_info = model_class.from_pretrained(model_dir, output_loading_info=True)
    except Exception as error:
        raise ValueError(f"The weights in {model_dir} do not load into {architecture}: {error}") from error
    broken = {
        kind: keys for kind, keys in loading_info.items() if kind in ("missing_keys", "mismatched_keys") and keys
    }
    if broken:
        raise ValueError(f"The weights in {model_dir} do not match the config: {broken}. Re-save the model.")
    feature_extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    waveform = np.random.default_rng(0).standard_normal(feature_extractor.sampling_rate).astype(np.float32)
    inputs = feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        output = model.eval()(**inputs)[0]
    if not torch.isfinite(output).all():
        raise ValueError(f"The model in {model_dir} outputs NaN or infinite values for one second of noise.")
    summary = f"{architecture}: {config.num_hidden_groups} distinct layers x {config.num_hidden_layers} applications"
    return summary, model


def stage_for_upload(
    model_dir: str | os.PathLike, staging_dir: str | os.PathLike, repo_id: str | None = None
) -> list[str]:
    """Check `model_dir`, then put into the new folder `staging_dir` everything a Hub repository needs (see the module
    docstring): the config's `auto_map` and the remote code come from Transformers' `custom_object_save`, as in
    `save_pretrained`. Returns the staged file (and folder) names."""
    model_dir, staging_dir = Path(model_dir), Path(staging_dir)
    if staging_dir.exists() and any(staging_dir.iterdir()):
        raise FileExistsError(f"Staging folder {staging_dir} is not empty; choose a new or empty folder.")
    files = files_to_upload(model_dir) if model_dir.is_dir() else []  # links out are refused before any read
    summary, model = _check_model_dir(model_dir)
    logger.info("Load check passed: %s", summary)
    for name in files:
        (staging_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_dir / name, staging_dir / name)
    model.describe_remote_code()
    custom_object_save(model, staging_dir, config=model.config)
    model.config.save_pretrained(staging_dir)
    if "README.md" in files:
        write_card_for_folder(staging_dir, config=model.config, model_id=repo_id)
    else:
        write_model_card(staging_dir, model.config, model_id=repo_id, eval_results=saved_eval_results(model_dir))
    return sorted(path.name for path in staging_dir.iterdir())


def upload_staged(
    staging_dir: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | bool | None = None,
) -> str:
    """Create (or reuse) the model repository `repo_id` and upload the staged folder in one commit; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id, folder_path=staging_dir, revision=revision, commit_message="Upload ALHuBERT model"
    )
    return getattr(commit, "commit_url", None) or str(repo_url)


__all__ = ["files_to_upload", "stage_for_upload", "upload_staged"]
