# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""What makes a saved ALHuBERT folder complete: every path that writes one (`save_pretrained`, `push_to_hub`, the
Trainers' saves and pushes, the converter, `alhubert push-to-hub`) goes through `complete_model_folder`.

A complete folder holds the weights, `config.json` with `auto_map` (the model classes as remote code) and
`custom_pipelines` (the `"audio-feature-extraction"` pipeline), every remote-code module of `alhubert/models/`,
a feature extractor (or the processor saved next to it) and a model card (written by the `alhubert` package, which
sets `card_writer`; remote code alone writes none).
"""

import json
import os
import shutil
from pathlib import Path


MODELS_DIR = Path(__file__).parent
AUDIO_FEATURE_EXTRACTION_TASK = "audio-feature-extraction"
PIPELINE_FILE = "pipeline_audio_features.py"
# What `save_pretrained` of a feature extractor, tokenizer or processor writes beside the model.
PREPROCESSING_FILES = (
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "special_tokens_map.json",
    "added_tokens.json",
)
# The `custom_pipelines` entry that `Pipeline.save_pretrained` would write for the audio feature pipeline.
CUSTOM_PIPELINES = {
    AUDIO_FEATURE_EXTRACTION_TASK: {
        "impl": "pipeline_audio_features.AudioFeatureExtractionPipeline",
        "pt": ["AutoModel"],
        "type": "audio",
    }
}


def remote_code_files() -> list[str]:
    """The modules shipped next to the weights: every module of this folder (the package's `__init__` aside).

    Loaded as remote code, the folder holds the modules Transformers downloaded; those are what a re-save copies.
    """
    return sorted(path.name for path in MODELS_DIR.glob("*.py") if path.name != "__init__.py")


def complete_config(config, auto_map: dict):
    """Set `auto_map` and, when the pipeline module is available, `custom_pipelines` on a config before it is saved."""
    config.auto_map = dict(auto_map)
    if (MODELS_DIR / PIPELINE_FILE).is_file():
        config.custom_pipelines = json.loads(json.dumps(CUSTOM_PIPELINES))


def complete_model_folder(save_directory, model=None, config=None, auto_map: dict | None = None, feature_extractor=None):
    """Add to a saved model folder what it lacks: remote code, `auto_map`/`custom_pipelines` in config.json, a feature
    extractor (unless one or a processor is there) and, when a card writer is set, a model card (unless README.md
    exists). Safe to run on a finished folder: existing files other than the remote code and config are kept."""
    save_directory = Path(save_directory)
    for name in remote_code_files():
        target = save_directory / name
        if not target.exists() or not os.path.samefile(MODELS_DIR / name, target):
            shutil.copyfile(MODELS_DIR / name, target)
    config_path = save_directory / "config.json"
    if auto_map is not None and config_path.is_file():
        values = json.loads(config_path.read_text(encoding="utf-8"))
        values["auto_map"] = {**values.get("auto_map", {}), **auto_map}
        if (MODELS_DIR / PIPELINE_FILE).is_file():
            values["custom_pipelines"] = CUSTOM_PIPELINES
        config_path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if feature_extractor is not None and not (save_directory / "preprocessor_config.json").exists():
        feature_extractor.save_pretrained(save_directory)
    if card_writer is not None and not (save_directory / "README.md").exists():
        card_writer(save_directory, config=config if config is not None else getattr(model, "config", None))


# Set by `import alhubert` to `alhubert.hub.model_cards.write_card_for_folder` (models/ must not import hub/):
# `card_writer(folder, config=..., model_id=None)` writes the project's card into a saved folder.
card_writer = None
