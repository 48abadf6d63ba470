# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Model cards for ALHuBERT checkpoints, built with `huggingface_hub`'s `ModelCard` and `ModelCardData`.

Every number a card shows is either computed from the configuration, measured from the saved files
(`write_model_card`), or passed in by the script that produced the weights (`measured`, `recipe`, `results`).
"""

import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open
from transformers import AutoConfig, PretrainedConfig

from ..models.configuration_alhubert import AlHubertConfig
from ..utils.files import atomic_write
from .space import space_card_section


# The card's text: a Jinja template rendered by `ModelCard.from_template`.
CARD_TEMPLATE = Path(__file__).with_name("model_card_template.md")
CARD_TAGS = ["audio", "speech", "hubert", "distillation", "parameter-sharing"]
# The Hub task of each architecture (`config.architectures[0]`).
TASKS = {
    "AlHubertModel": "feature-extraction",
    "AlHubertForCTC": "automatic-speech-recognition",
    "AlHubertSuperbForCTC": "automatic-speech-recognition",
    "AlHubertForSequenceClassification": "audio-classification",
}
# Metric names as the fine-tuning commands log them (`eval_` prefix removed), which are also the Hub metric types.
METRICS = ("wer", "cer", "accuracy")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_model_id(name: str | None) -> str | None:
    """`name` when it is a Hub model id (`org/name`), None for local paths, demo names and anything else."""
    if not name or not _HUB_ID.match(name) or os.path.exists(name) or name.startswith((".", "/")):
        return None
    return name


def type_name(config: PretrainedConfig) -> str:
    return (config.architectures or ["AlHubertModel"])[0]


# The recipe of the released DistilALHuBERT students, as read off the authors' configuration files (pass it as
# `recipe=` only for weights that were trained with it, such as converted original checkpoints).
PAPER_RECIPE = {
    "Teacher": "HuBERT Base (LibriSpeech 960 h), frozen",
    "Student initialisation": "teacher's feature encoder, projection, positional convolution and first G layers",
    "Targets (hidden_states indices, student = teacher)": "2, 4, 6, 8, 10, 12",
    "Loss per target": "L2 + cosine (mean of -log sigmoid(cosine similarity)), summed over targets",
    "Data": "LibriSpeech 960 h, raw 16 kHz audio, utterances cropped to at most 250,000 samples",
    "Batch size": 8,
    "Optimiser": "AdamW, lr 2e-4, betas (0.9, 0.98), eps 1e-6, weight decay 1e-6",
    "Schedule": "linear warm-up over 7 % of steps, then linear decay",
    "Steps": "200,000",
    "Gradient clipping": 5.0,
    "Feature encoder gradient scale": 0.1,
}


def sharing_pattern(config: AlHubertConfig) -> str:
    """The distinct layer used by each layer application, e.g. `"L0 L1 L0 L1 L0 L1"`: beyond 48 applications the
    first 48, then the count (a crafted config's huge layer count must not build a huge string)."""
    shown = min(config.num_hidden_layers, 48)
    pattern = " ".join(f"L{config.distinct_layer_index(i)}" for i in range(shown))
    if shown < config.num_hidden_layers:
        pattern += f" ... ({config.num_hidden_layers:,} applications)"
    return pattern


def measure_saved_model(model_dir: str | os.PathLike) -> dict:
    """Parameter count and total safetensors size of a model saved with `save_pretrained`."""
    weight_files = sorted(Path(model_dir).glob("*.safetensors"))
    if not weight_files:
        raise FileNotFoundError(
            f"No *.safetensors weights in {model_dir}; save the model with `save_pretrained` (safetensors is the "
            "default) before writing its card."
        )
    parameters = mask_embedding = 0
    for weight_file in weight_files:
        with safe_open(weight_file, framework="pt") as weights:
            for name in weights.keys():
                numel = math.prod(weights.get_slice(name).get_shape())
                parameters += numel
                if name.endswith("masked_spec_embed"):
                    mask_embedding += numel
    return {
        "parameters": parameters,
        "parameters_without_mask_embedding": parameters - mask_embedding,
        "file_size_bytes": sum(weight_file.stat().st_size for weight_file in weight_files),
    }


def escape_text(value: object) -> str:
    """`value` as inert Markdown text for one line or table cell: HTML escaped, line breaks made spaces (so no heading
    or list can start), table bars and backticks escaped. For strings read from checkpoints and user files."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return text.replace("|", "\\|").replace("`", "\\`")


def _format_value(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def _table(header: tuple, rows) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {name} | {_format_value(value)} |" for name, value in rows]
    return "\n".join(lines)


def _architecture_table(config: AlHubertConfig, measured: dict) -> str:
    rows = [
        ("Distinct transformer layers (`num_hidden_groups`)", config.num_hidden_groups),
        ("Layer applications (`num_hidden_layers`)", config.num_hidden_layers),
        (f'Sharing order (`layer_sharing="{config.layer_sharing}"`)', sharing_pattern(config)),
        (
            "Hidden size / attention heads / feed-forward size",
            f"{config.hidden_size} / {config.num_attention_heads} / {config.intermediate_size}",
        ),
        ("Layer norm", "pre-LN (`do_stable_layer_norm`)" if config.do_stable_layer_norm else "post-LN (HuBERT Base)"),
        ("Input", f"raw 16 kHz mono waveform, {'normalised' if config.do_normalize else 'not normalised'}"),
        ("Output frame rate", f"{16000 / math.prod(config.conv_stride):g} frames/s"),
    ]
    labels = {
        "parameters": "Parameters (measured)",
        "parameters_without_mask_embedding": "Parameters without the pre-training mask embedding",
        "file_size_bytes": "Weights file size (safetensors, measured)",
    }
    if "file_size_bytes" in measured:
        size = measured["file_size_bytes"]
        measured = {**measured, "file_size_bytes": f"{size:,} bytes ({size / 2**20:.1f} MiB)"}
    rows += [(labels[name], measured[name]) for name in labels if name in measured]
    rows += [(name, value) for name, value in measured.items() if name not in labels]
    return _table(("Property", "Value"), rows)


def _onnx_usage(model_id: str, onnx_files: list[str], config: AlHubertConfig) -> str:
    file = "onnx/model_quantized.onnx" if "model_quantized.onnx" in onnx_files else "onnx/model.onnx"
    listed = ", ".join(f"`onnx/{name}`" for name in onnx_files)
    normalise = (
        "\nwaveform = (waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)" if config.do_normalize else ""
    )
    int8 = "; `model_quantized.onnx` has int8 weights" if "model_quantized.onnx" in onnx_files else ""
    return f"""This repository has ONNX weights ({listed}{int8}). They run with ONNX Runtime alone, without PyTorch
or Transformers:

```python
import numpy as np
import onnxruntime
import soundfile
from huggingface_hub import hf_hub_download

session = onnxruntime.InferenceSession(hf_hub_download("{model_id}", "{file}"))
waveform, rate = soundfile.read("speech.wav", dtype="float32")  # 16 kHz mono{normalise}
mask = np.ones((1, len(waveform)), np.int64)
outputs = session.run(None, {{"input_values": waveform[None], "attention_mask": mask}})
print(outputs[0].shape)  # last_hidden_state (logits for a CTC model): (1, frames, ...)
```

Exported with `alhubert export onnx` from this project (each shared layer is stored once in the file)."""


def build_model_card(
    config: AlHubertConfig,
    *,
    model_id: str | None = None,
    description: str | None = None,
    measured: dict | None = None,
    source: str | None = None,
    recipe: dict | None = None,
    results: dict | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    training_data: str | None = None,
    eval_results: dict | None = None,
    eval_dataset: str | None = None,
    tags: list[str] | None = None,
    onnx_files: list[str] | None = None,
) -> ModelCard:
    """A model card for an ALHuBERT checkpoint: Hub metadata, architecture, usage, recipe, limitations, citations.

    `measured` holds measured numbers (`parameters`, `parameters_without_mask_embedding`, `file_size_bytes`, or any
    other name -> value), `source` says where the weights come from, `recipe` and `results` are name -> value tables.
    The card fits the model: `pipeline_tag` follows `config.architectures`; `base_model` (the teacher, or the
    encoder a fine-tuned model started from) is kept only when it is a Hub id; `datasets` names Hub datasets only
    when the data was that dataset, and `training_data` says in words what the weights were trained on;
    `eval_results` (e.g. `{"wer": 0.12, "cer": 0.04}` or `{"accuracy": 0.9}`, measured on `eval_dataset`) go into
    the card's `model-index`; `onnx_files` names the files in the repository's `onnx/` folder (for an ONNX section).
    """
    measured = measured or {}
    task = TASKS.get(type_name(config), "feature-extraction")
    base_model = hub_model_id(base_model)
    evaluations = [
        EvalResult(
            task_type=task,
            dataset_type=eval_dataset or "custom",
            dataset_name=eval_dataset or "evaluation data",
            metric_type=name,
            metric_value=round(float(value), 4),
        )
        for name, value in (eval_results or {}).items()
        if name in METRICS
    ]
    card_data = ModelCardData(
        language="en",
        license="apache-2.0",
        library_name="transformers",
        tags=list(CARD_TAGS) + [tag for tag in (tags or []) if tag not in CARD_TAGS],
        datasets=datasets or None,
        pipeline_tag=task,
        base_model=base_model,
        model_name=model_id or ("ALHuBERT" if evaluations else None),
        eval_results=evaluations or None,
    )
    title = model_id.split("/")[-1] if model_id else "ALHuBERT"
    frame = f"{config.hidden_size} values per {1000 * math.prod(config.conv_stride) / 16000:g} ms frame"
    shape = (
        f"HuBERT's architecture in which {config.num_hidden_groups} distinct transformer layers are applied "
        f"{config.num_hidden_layers} times, ALBERT-style"
    )
    origin = f" from `{base_model}`" if base_model else ""
    if task == "feature-extraction":
        default_description = (
            f"An ALHuBERT (DistilALHuBERT) speech encoder: {shape}, distilled{origin}. It turns raw 16 kHz speech "
            f"into contextual features ({frame}) for downstream speech tasks."
        )
    elif task == "automatic-speech-recognition":
        default_description = (
            f"An ALHuBERT speech recogniser ({type_name(config)}: character CTC): {shape}, fine-tuned{origin} for "
            "English speech recognition."
        )
    else:
        labels = ", ".join(str(label) for label in (config.id2label or {}).values())
        default_description = f"An ALHuBERT audio classifier: {shape}, fine-tuned{origin} to classify utterances" + (
            f" into {len(config.id2label)} classes ({labels})." if config.id2label else "."
        )
    results_text = None
    if results or eval_results:
        rows = {**{f"eval {name}": value for name, value in (eval_results or {}).items()}, **(results or {})}
        evaluated_on = f" (evaluation data: {eval_dataset})." if eval_results and eval_dataset else "."
        table = _table(("Metric", "Value"), rows.items())
        results_text = f"Measured by the script that produced these weights{evaluated_on}\n\n{table}"
    recipe_table = _table(("Setting", "Value"), recipe.items()) if recipe is not None else None
    recipe_heading, recipe_text = ("Fine-tuning recipe", recipe_table) if recipe else (None, None)
    if task == "feature-extraction":
        recipe_heading = "Distillation recipe"
        recipe_text = (
            "The student is initialised from the teacher (feature encoder, projection, positional convolution and the "
            "first `num_hidden_groups` transformer layers) and trained to predict several of the teacher's hidden "
            "states from the matching layer applications, with an L1 or L2 loss plus a cosine-similarity term.\n\n"
            + (recipe_table or "The recipe used to train these particular weights was not recorded with them.")
        )
    model_id = model_id or "path/to/model"
    return ModelCard.from_template(
        card_data,
        template_path=str(CARD_TEMPLATE),
        title=title,
        description=description or default_description,
        architecture=_architecture_table(config, measured),
        source=source,
        training_data=training_data,
        task=task,
        model_id=model_id,
        space=space_card_section(model_id),
        hidden_size=config.hidden_size,
        num_hidden_states=config.num_hidden_layers + 1,
        middle=max(config.num_hidden_layers // 2, 1),
        call="speech.flac" if task == "automatic-speech-recognition" else "clip.wav",
        onnx=_onnx_usage(model_id, sorted(onnx_files), config) if onnx_files else None,
        recipe_heading=recipe_heading,
        recipe=recipe_text,
        results=results_text,
    )


def write_model_card(model_dir: str | os.PathLike, config: AlHubertConfig | None = None, **kwargs: Any) -> ModelCard:
    """Measure the model saved in `model_dir` and write its `README.md` card (atomically); returns the card.
    Keyword arguments go to `build_model_card`; values passed in `measured` override the measurements."""
    model_dir = Path(model_dir)
    if config is None:
        config = AlHubertConfig.from_pretrained(model_dir)
    kwargs["measured"] = {**measure_saved_model(model_dir), **(kwargs.get("measured") or {})}
    if "eval_results" not in kwargs:
        kwargs["eval_results"] = saved_eval_results(model_dir)
    kwargs.setdefault("onnx_files", [path.name for path in (model_dir / "onnx").glob("*.onnx")])
    card = build_model_card(config, **kwargs)
    atomic_write(model_dir / "README.md", card.save)
    return card


def saved_eval_results(model_dir: str | os.PathLike) -> dict:
    """The task metrics (WER, CER, accuracy) a Trainer saved in `model_dir/eval_results.json`, if any."""
    path = Path(model_dir) / "eval_results.json"
    if not path.is_file():
        return {}
    values = json.loads(path.read_text(encoding="utf-8"))
    return {name: values[f"eval_{name}"] for name in METRICS if f"eval_{name}" in values}


def write_card_for_folder(
    model_dir: str | os.PathLike,
    config: PretrainedConfig | None = None,
    model_id: str | None = None,
    tags: list[str] | None = None,
) -> ModelCard:
    """The card of a saved folder about to be pushed (`alhubert push-to-hub`, the Trainers' pushes). A card that the
    command which made the weights wrote is kept: only the repository `model_id`, extra `tags` and ONNX weights
    exported after it are added, and the file is rewritten only when one of them changes it. A folder without a card
    gets one from what the folder tells: the model it started from when that is a Hub id and its saved metrics."""
    model_dir = Path(model_dir)
    if config is None:
        config = AutoConfig.from_pretrained(model_dir)
    existing = model_dir / "README.md"
    if not existing.is_file():
        base_model = getattr(config, "_name_or_path", None)
        return write_model_card(model_dir, config, model_id=model_id, base_model=base_model, tags=tags)
    card = ModelCard.load(existing)
    before = str(card)
    if model_id is not None:
        card.data.model_name = card.data.model_name or model_id
        card.text = card.text.replace('"path/to/model"', f'"{model_id}"')
    if tags:
        card.data.tags = list(dict.fromkeys([*(card.data.tags or []), *tags]))
    onnx_files = sorted(path.name for path in (model_dir / "onnx").glob("*.onnx"))
    if onnx_files and "## ONNX" not in card.text:  # exported after the card was written
        section = "## ONNX\n\n" + _onnx_usage(model_id or "path/to/model", onnx_files, config) + "\n\n"
        at = card.text.find("## Limitations")
        card.text = card.text[:at] + section + card.text[at:] if at >= 0 else card.text + "\n" + section
    if str(card) != before:
        atomic_write(existing, card.save)
    return card


__all__ = [
    "PAPER_RECIPE",
    "build_model_card",
    "escape_text",
    "hub_model_id",
    "measure_saved_model",
    "saved_eval_results",
    "sharing_pattern",
    "write_card_for_folder",
    "write_model_card",
]
