# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Model cards for ALHuBERT checkpoints, built with `huggingface_hub`'s `ModelCard` and `ModelCardData`.

Every number a card shows is either computed from the configuration, measured from the saved files
(`write_model_card`), or passed in by the script that produced the weights (`measured`, `recipe`, `results`).
"""

import math
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from safetensors import safe_open

from ..models.configuration_alhubert import AlHubertConfig
from .files import atomic_write


CARD_TAGS = ["audio", "speech", "hubert", "distillation", "parameter-sharing"]

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

_CITATIONS = """```bibtex
@inproceedings{wang2023distilalhubert,
  title     = {{DistilALHuBERT}: A Distilled Parameter Sharing Audio Representation Model},
  author    = {Wang, Haoyu and Wang, Siyuan and Gong, Yaguang and Zhang, Wei-Qiang},
  booktitle = {International Conference on Signal Processing and Machine Learning (SPML)},
  year      = {2023}
}

@article{hsu2021hubert,
  title   = {{HuBERT}: Self-Supervised Speech Representation Learning by Masked Prediction of Hidden Units},
  author  = {Hsu, Wei-Ning and Bolte, Benjamin and Tsai, Yao-Hung Hubert and Lakhotia, Kushal and
             Salakhutdinov, Ruslan and Mohamed, Abdelrahman},
  journal = {IEEE/ACM Transactions on Audio, Speech, and Language Processing},
  volume  = {29},
  pages   = {3451--3460},
  year    = {2021}
}
```"""


SHARING_PATTERN_SHOWN = 48


def sharing_pattern(config: AlHubertConfig) -> str:
    """The distinct layer used by each layer application, e.g. `"L0 L1 L0 L1 L0 L1"`.

    Beyond `SHARING_PATTERN_SHOWN` applications only the first ones are listed, then the count (a crafted config's
    huge layer count must not build a huge string).
    """
    shown = min(config.num_hidden_layers, SHARING_PATTERN_SHOWN)
    pattern = " ".join(f"L{config.distinct_layer_index(i)}" for i in range(shown))
    if shown < config.num_hidden_layers:
        pattern += f" ... ({config.num_hidden_layers:,} applications)"
    return pattern


def measure_saved_model(model_dir) -> dict:
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
        (f"Sharing order (`layer_sharing=\"{config.layer_sharing}\"`)", sharing_pattern(config)),
        ("Hidden size / attention heads / feed-forward size",
         f"{config.hidden_size} / {config.num_attention_heads} / {config.intermediate_size}"),
        ("Layer norm", "pre-LN (`do_stable_layer_norm`)" if config.do_stable_layer_norm else "post-LN (HuBERT Base)"),
        ("Input", f"raw 16 kHz mono waveform, {'normalised' if config.do_normalize else 'not normalised'}"),
        ("Output frame rate", f"{16000 / math.prod(config.conv_stride):g} frames/s"),
    ]
    if "parameters" in measured:
        rows.append(("Parameters (measured)", measured["parameters"]))
    if "parameters_without_mask_embedding" in measured:
        rows.append(("Parameters without the pre-training mask embedding", measured["parameters_without_mask_embedding"]))
    if "file_size_bytes" in measured:
        size = measured["file_size_bytes"]
        rows.append(("Weights file size (safetensors, measured)", f"{size:,} bytes ({size / 2**20:.1f} MiB)"))
    rows += [(name, value) for name, value in measured.items()
             if name not in {"parameters", "parameters_without_mask_embedding", "file_size_bytes"}]
    return _table(("Property", "Value"), rows)


def _usage(model_id: str, config: AlHubertConfig) -> str:
    middle = max(config.num_hidden_layers // 2, 1)
    return f"""Without installing anything but Transformers (the model code is downloaded with the weights):

```python
import torch
from transformers import AutoFeatureExtractor, AutoModel

model = AutoModel.from_pretrained("{model_id}", trust_remote_code=True).eval()
feature_extractor = AutoFeatureExtractor.from_pretrained("{model_id}")
waveform = torch.randn(16000).numpy()  # one second of 16 kHz mono audio
inputs = feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")
with torch.no_grad():
    outputs = model(**inputs, output_hidden_states=True)
print(outputs.last_hidden_state.shape)  # (1, frames, {config.hidden_size})
print(len(outputs.hidden_states))       # {config.num_hidden_layers + 1}: encoder input + one per layer application
```

The audio feature pipeline ships with the model as remote code as well:

```python
from transformers import pipeline

extractor = pipeline("audio-feature-extraction", model="{model_id}", trust_remote_code=True)
features = extractor("speech.wav", layer={middle})  # numpy array (frames, {config.hidden_size})
```

With this project's `alhubert` package installed, the Auto classes and the pipeline work without
`trust_remote_code`, and the command line extracts features from long recordings in bounded memory:

```python
import alhubert  # registers ALHuBERT with Transformers
from transformers import pipeline

extractor = pipeline("audio-feature-extraction", model="{model_id}")
```

```bash
alhubert extract speech.wav --model {model_id} --layer {middle} --output features.safetensors
```"""


def _recipe_section(recipe: dict | None) -> str:
    method = (
        "The student is initialised from the teacher (feature encoder, projection, positional convolution and the "
        "first `num_hidden_groups` transformer layers) and trained to predict several of the teacher's hidden "
        "states from the matching layer applications, with an L1 or L2 loss plus a cosine-similarity term."
    )
    if recipe is None:
        return method + "\n\nThe recipe used to train these particular weights was not recorded with them."
    return method + "\n\n" + _table(("Setting", "Value"), recipe.items())


def build_model_card(
    config: AlHubertConfig,
    *,
    model_id: str | None = None,
    description: str | None = None,
    measured: dict | None = None,
    source: str | None = None,
    recipe: dict | None = None,
    results: dict | None = None,
    base_model: str = "facebook/hubert-base-ls960",
) -> ModelCard:
    """A model card for an ALHuBERT checkpoint: Hub metadata, architecture, usage, recipe, limitations, citations.

    `measured` holds measured numbers (`parameters`, `parameters_without_mask_embedding`, `file_size_bytes`, or any
    other name -> value), `source` says where the weights come from, `recipe` and `results` are name -> value tables.
    """
    measured = measured or {}
    card_data = ModelCardData(
        language="en",
        license="apache-2.0",
        library_name="transformers",
        tags=list(CARD_TAGS),
        datasets=["librispeech_asr"],
        pipeline_tag="feature-extraction",
        base_model=base_model,
        model_name=model_id,
    )
    title = model_id.split("/")[-1] if model_id else "ALHuBERT"
    description = description or (
        f"An ALHuBERT (DistilALHuBERT) speech encoder: HuBERT's architecture in which "
        f"{config.num_hidden_groups} distinct transformer layers are applied {config.num_hidden_layers} times, "
        f"ALBERT-style, distilled from `{base_model}`. It turns raw 16 kHz speech into contextual features "
        f"({config.hidden_size} values per {1000 * math.prod(config.conv_stride) / 16000:g} ms frame) for downstream speech tasks."
    )
    sections = [
        f"# {title}",
        description,
        "## Architecture",
        _architecture_table(config, measured),
        "Sharing the layers shrinks the weights, not the compute: every layer application runs, so inference costs "
        "as much as a HuBERT with the same number of layers.",
    ]
    if source:
        sections += ["## Weights", source]
    sections += ["## Usage", _usage(model_id or "path/to/model", config)]
    sections += ["## Distillation recipe", _recipe_section(recipe)]
    if results:
        sections += ["## Results", "Measured by the script that produced these weights.",
                     _table(("Metric", "Value"), results.items())]
    sections += [
        "## Limitations",
        "- Trained (distilled) on English read speech (LibriSpeech); expect weaker features for other languages, "
        "spontaneous or noisy speech, and non-speech audio.\n"
        "- Expects 16 kHz mono input; resample other audio first (the pipeline and the command line do).\n"
        "- A feature encoder: speech recognition or classification needs a head fine-tuned on labelled data "
        "(`AutoModelForCTC`, `AutoModelForAudioClassification`).\n"
        "- Self-attention is quadratic in duration; split long recordings (`alhubert extract` processes them in "
        "overlapping chunks).",
        "## Citation",
        _CITATIONS,
    ]
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"
    return ModelCard(content)


def write_model_card(model_dir, config: AlHubertConfig | None = None, **kwargs) -> ModelCard:
    """Measure the model saved in `model_dir` and write its `README.md` card (atomically); returns the card.

    Keyword arguments go to `build_model_card`; measured values passed in `measured` override the measurements.
    """
    model_dir = Path(model_dir)
    if config is None:
        config = AlHubertConfig.from_pretrained(model_dir)
    kwargs["measured"] = {**measure_saved_model(model_dir), **(kwargs.get("measured") or {})}
    card = build_model_card(config, **kwargs)
    text = str(card)
    atomic_write(model_dir / "README.md", lambda name: Path(name).write_text(text, encoding="utf-8"))
    return card


__all__ = ["PAPER_RECIPE", "build_model_card", "measure_saved_model", "sharing_pattern", "write_model_card"]
