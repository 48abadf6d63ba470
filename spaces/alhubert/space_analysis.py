# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The Space's logic as plain functions (no Gradio): load a model, check the audio, run it at a chosen depth,
compare the layer applications, draw the pictures, transcribe or classify, and run the ONNX export.

Every problem with the user's input raises `SpaceInputError` with a one-line message that the page shows as is.
"""

import dataclasses
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification, AutoModelForCTC

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)
from alhubert.models.audio import AudioDecoderUnavailable, load_audio


SAMPLING_RATE = 16000
MAX_SECONDS = 30  # longer recordings are cut to their first 30 s (the page says so)
SILENCE_PEAK = 1e-4  # a clip whose loudest sample is below this (-80 dBFS) holds no sound
ONNX_BACKENDS = {"ONNX float32": "model.onnx", "ONNX int8": "model_quantized.onnx"}
PYTORCH = "PyTorch"
CTC_ARCHITECTURES = ("AlHubertForCTC", "AlHubertSuperbForCTC")


class SpaceInputError(ValueError):
    """A problem with the user's audio or choices, in one line that names the fix."""


@dataclasses.dataclass
class LoadedModel:
    """A model ready for the page: the full model, its encoder, preprocessing and the ONNX files found next to it."""

    source: str
    model: torch.nn.Module
    encoder: torch.nn.Module
    feature_extractor: object
    kind: str  # "encoder", "ctc" or "classification"
    tokenizer: object | None
    onnx_files: dict[str, Path]

    @property
    def config(self):
        return self.model.config


def load_model(source: str) -> LoadedModel:
    """Load a saved ALHuBERT (encoder, CTC, SUPERB or classification) from a local folder or a Hub model id."""
    config = AutoConfig.from_pretrained(source)
    architecture = (config.architectures or ["AlHubertModel"])[0]
    if architecture in CTC_ARCHITECTURES:
        kind, model = "ctc", AutoModelForCTC.from_pretrained(source)
    elif architecture.endswith("ForSequenceClassification"):
        kind, model = "classification", AutoModelForAudioClassification.from_pretrained(source)
    else:
        kind, model = "encoder", AutoModel.from_pretrained(source)
    tokenizer = None
    if kind == "ctc":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
    encoder = getattr(model, "alhubert", model)
    onnx_dir = Path(source) / "onnx"
    onnx_files = {name: onnx_dir / file for name, file in ONNX_BACKENDS.items() if (onnx_dir / file).is_file()}
    return LoadedModel(
        source, model.eval(), encoder.eval(), AutoFeatureExtractor.from_pretrained(source), kind, tokenizer, onnx_files
    )


def prepare_audio(audio, receptive_field: int, max_seconds: float = MAX_SECONDS) -> tuple[np.ndarray, list[str]]:
    """The clip (a file path, bytes or a `(sampling_rate, samples)` pair) as 16 kHz mono float32, and notices.

    Raises `SpaceInputError` for no audio, an undecodable file, silence only, or a clip shorter than the model's
    receptive field; cuts clips longer than `max_seconds` (with a notice).
    """
    if audio is None or (isinstance(audio, str) and not audio):
        raise SpaceInputError("No audio: record a clip with the microphone or upload a file, then press Analyse.")
    try:
        if isinstance(audio, tuple):
            rate, samples = audio
            samples = np.asarray(samples)
            if np.issubdtype(samples.dtype, np.integer):  # the microphone gives int16 PCM
                samples = samples.astype(np.float32) / np.iinfo(samples.dtype).max
            waveform = load_audio({"array": samples, "sampling_rate": rate}, SAMPLING_RATE)
        else:
            waveform = load_audio(audio, SAMPLING_RATE)
    except FileNotFoundError:
        raise SpaceInputError("The uploaded file is gone; upload it again.") from None
    except (ValueError, AudioDecoderUnavailable) as error:
        raise SpaceInputError(
            "Cannot decode this file as audio (WAV, FLAC, OGG and MP3 are read; convert other formats first): "
            + str(error).splitlines()[0][:300]
        ) from None
    notices = []
    limit = int(max_seconds * SAMPLING_RATE)
    if len(waveform) > limit:
        notices.append(
            f"The clip lasts {len(waveform) / SAMPLING_RATE:.1f} s: only its first {max_seconds:g} s are analysed."
        )
        waveform = waveform[:limit]
    if not np.isfinite(waveform).all():
        raise SpaceInputError("The audio holds NaN or infinite samples; record or export it again.")
    if len(waveform) < receptive_field:
        raise SpaceInputError(
            f"The clip is too short: {len(waveform)} samples ({1000 * len(waveform) / SAMPLING_RATE:.0f} ms) at "
            f"16 kHz, but the model needs at least {receptive_field} ({1000 * receptive_field / SAMPLING_RATE:.0f} "
            "ms) for one frame. Record a longer clip."
        )
    if np.abs(waveform).max() < SILENCE_PEAK:
        raise SpaceInputError("The clip is silent (no sample above -80 dBFS); check the microphone and record again.")
    return waveform, notices


def _inputs(loaded: LoadedModel, waveform: np.ndarray) -> dict:
    return dict(loaded.feature_extractor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt"))


def run_encoder(loaded: LoadedModel, waveform: np.ndarray, depth: int) -> tuple[list[np.ndarray], float]:
    """The hidden states (input of the first layer, then each of the `depth` layer applications) of one clip, as
    (frames, hidden) arrays, and the seconds the encoder took."""
    if not 1 <= depth <= loaded.config.num_hidden_layers:
        raise SpaceInputError(f"The depth must be between 1 and {loaded.config.num_hidden_layers}, got {depth}.")
    inputs = _inputs(loaded, waveform)
    with torch.inference_mode():
        start = time.perf_counter()
        outputs = loaded.encoder(**inputs, depth=depth, output_hidden_states=True)
        seconds = time.perf_counter() - start
    return [state[0].float().numpy() for state in outputs.hidden_states], seconds


def distinct_layers(config, depth: int | None = None) -> list[int | None]:
    """For each hidden state index (0 = the encoder input), the distinct layer that produced it (None for index 0)."""
    depth = config.num_hidden_layers if depth is None else depth
    return [None] + [config.distinct_layer_index(application) for application in range(depth)]


def state_labels(config, depth: int | None = None) -> list[str]:
    """Axis labels: "in" for the encoder input, then "k:Lg" (application k made by distinct layer g)."""
    return ["in"] + [f"{index}:L{layer}" for index, layer in enumerate(distinct_layers(config, depth)) if index]


def linear_cka(first: np.ndarray, second: np.ndarray) -> float:
    """Linear centred kernel alignment of two (frames, features) arrays: 1 for the same features up to rotation and
    scale, near 0 for unrelated ones."""
    first = first.astype(np.float64) - first.mean(axis=0)
    second = second.astype(np.float64) - second.mean(axis=0)
    cross = np.linalg.norm(second.T @ first) ** 2
    norms = np.linalg.norm(first.T @ first) * np.linalg.norm(second.T @ second)
    return float(cross / norms) if norms > 0 else 0.0


def mean_cosine(first: np.ndarray, second: np.ndarray) -> float:
    """Cosine similarity of the two arrays' frames, averaged over the frames."""
    first = first / np.maximum(np.linalg.norm(first, axis=-1, keepdims=True), 1e-12)
    second = second / np.maximum(np.linalg.norm(second, axis=-1, keepdims=True), 1e-12)
    return float((first * second).sum(axis=-1).mean())


SIMILARITIES = {"linear CKA": linear_cka, "mean cosine": mean_cosine}


def similarity_matrix(hidden_states: list[np.ndarray], measure: str = "linear CKA") -> np.ndarray:
    """`measure` between every pair of hidden states (symmetric, (n, n))."""
    function = SIMILARITIES[measure]
    size = len(hidden_states)
    matrix = np.eye(size)
    for row in range(size):
        for column in range(row + 1, size):
            matrix[row, column] = matrix[column, row] = function(hidden_states[row], hidden_states[column])
    return matrix


def principal_components(features: np.ndarray, count: int = 8) -> np.ndarray:
    """The first `count` principal components of (frames, features) over time: a (count, frames) array, each row
    scaled to unit variance (fewer rows when there are fewer frames or features)."""
    centred = features.astype(np.float64) - features.mean(axis=0)
    _, _, right = np.linalg.svd(centred, full_matrices=False)
    components = centred @ right[:count].T  # (frames, count)
    scale = components.std(axis=0)
    return (components / np.where(scale > 0, scale, 1.0)).T


def _figure_to_image(figure) -> np.ndarray:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    buffer.seek(0)
    return plt.imread(buffer, format="png")[..., :3]


def similarity_image(matrix: np.ndarray, config, measure: str) -> np.ndarray:
    """The similarity matrix as a heat map (RGB array) whose axes name the distinct layer of each application."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = matrix.shape[0] - 1
    labels = state_labels(config, depth)
    figure, axes = plt.subplots(figsize=(6.2, 5.2))
    image = axes.imshow(matrix, origin="lower", cmap="viridis", vmin=matrix.min(), vmax=1.0)
    if len(matrix) <= 13:  # the values themselves, when they fit
        for (row, column), value in np.ndenumerate(matrix):
            axes.text(
                column,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=6 if len(matrix) > 7 else 8,
                color="white" if value < (matrix.min() + 1.0) / 2 else "black",
            )
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    colours = plt.get_cmap("tab10")
    for ticks in (axes.get_xticklabels(), axes.get_yticklabels()):
        for index, (tick, layer) in enumerate(zip(ticks, distinct_layers(config, depth))):
            tick.set_color("black" if layer is None else colours(layer % 10))
    axes.set_xlabel("hidden state (application : distinct layer)")
    axes.set_ylabel("hidden state (application : distinct layer)")
    axes.set_title(
        f"{measure} between layer applications\n{config.num_hidden_groups} distinct layers, "
        f'sharing "{config.layer_sharing}", depth {depth}',
        fontsize=10,
    )
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return _figure_to_image(figure)


def features_image(features: np.ndarray, layer: int, config, count: int = 8) -> np.ndarray:
    """The first principal components of one hidden state over time, as a heat map (RGB array)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    components = principal_components(features, count)
    frame_seconds = float(np.prod(config.conv_stride)) / SAMPLING_RATE
    figure, axes = plt.subplots(figsize=(7.5, 2.8))
    limit = max(float(np.abs(components).max()), 1e-6)
    axes.imshow(
        components,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
        extent=(0, components.shape[1] * frame_seconds, components.shape[0] - 0.5, -0.5),
    )
    axes.set_xlabel("time (s)")
    axes.set_ylabel("principal component")
    made_by = (
        "encoder input"
        if layer == 0
        else f"application {layer}, distinct layer L{config.distinct_layer_index(layer - 1)}"
    )
    axes.set_title(f"hidden state {layer} ({made_by}): first {components.shape[0]} principal components", fontsize=10)
    figure.tight_layout()
    return _figure_to_image(figure)


def transcribe(loaded: LoadedModel, waveform: np.ndarray) -> str:
    """Greedy CTC transcript of a CTC or SUPERB model (full depth)."""
    with torch.inference_mode():
        logits = loaded.model(**_inputs(loaded, waveform)).logits
    return loaded.tokenizer.decode(logits[0].argmax(-1).tolist())


def classify(loaded: LoadedModel, waveform: np.ndarray, top: int = 5) -> dict[str, float]:
    """The `top` labels of a classification model with their probabilities (full depth)."""
    with torch.inference_mode():
        probabilities = loaded.model(**_inputs(loaded, waveform)).logits[0].softmax(-1)
    scores, indices = probabilities.topk(min(top, probabilities.numel()))
    return {str(loaded.config.id2label[int(index)]): float(score) for score, index in zip(scores, indices)}


def onnx_session(path: Path):
    """An ONNX Runtime CPU session for `path` (imported here: onnxruntime is needed only for this backend)."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_onnx(loaded: LoadedModel, backend: str, waveform: np.ndarray, sessions: dict | None = None) -> dict:
    """Run the ONNX export named `backend` (full depth); returns its outputs by name and the seconds it took.

    `sessions` caches the ONNX Runtime sessions between calls.
    """
    if backend not in ONNX_BACKENDS:
        raise SpaceInputError(f"Unknown backend {backend!r}; choose {PYTORCH} or one of {', '.join(ONNX_BACKENDS)}.")
    if backend not in loaded.onnx_files:
        raise SpaceInputError(
            f"{backend!r} is not available: the model folder has no onnx/{ONNX_BACKENDS[backend]} "
            "(alhubert export onnx MODEL MODEL --quantize int8)."
        )
    sessions = {} if sessions is None else sessions
    if backend not in sessions:
        sessions[backend] = onnx_session(loaded.onnx_files[backend])
    session = sessions[backend]
    inputs = {key: value.numpy() for key, value in _inputs(loaded, waveform).items()}
    if "attention_mask" not in inputs:
        inputs["attention_mask"] = np.ones_like(inputs["input_values"], dtype=np.int64)
    names = [output.name for output in session.get_outputs()]
    start = time.perf_counter()
    values = session.run(
        None,
        {
            key: inputs[key].astype(np.int64 if key == "attention_mask" else np.float32)
            for key in ("input_values", "attention_mask")
        },
    )
    return {"outputs": dict(zip(names, values)), "seconds": time.perf_counter() - start}


def pytorch_output(loaded: LoadedModel, waveform: np.ndarray) -> np.ndarray:
    """The full-depth output the ONNX export is compared with: logits of a head, else the last hidden state."""
    with torch.inference_mode():
        outputs = loaded.model(**_inputs(loaded, waveform))
    return (outputs.logits if loaded.kind != "encoder" else outputs.last_hidden_state)[0].float().numpy()


def onnx_cosine(loaded: LoadedModel, onnx_outputs: dict, waveform: np.ndarray) -> float:
    """Mean cosine similarity of the ONNX export's first output with PyTorch's (per frame; per clip for labels)."""
    first = next(iter(onnx_outputs.values()))[0]
    reference = pytorch_output(loaded, waveform)
    return mean_cosine(first.reshape(reference.shape), reference)


def onnx_transcript(loaded: LoadedModel, onnx_outputs: dict) -> str:
    return loaded.tokenizer.decode(onnx_outputs["logits"][0].argmax(-1).tolist())


def onnx_labels(loaded: LoadedModel, onnx_outputs: dict, top: int = 5) -> dict[str, float]:
    logits = torch.from_numpy(onnx_outputs["logits"][0])
    probabilities = logits.softmax(-1)
    scores, indices = probabilities.topk(min(top, probabilities.numel()))
    return {str(loaded.config.id2label[int(index)]): float(score) for score, index in zip(scores, indices)}


@dataclasses.dataclass
class Analysis:
    """Everything the page shows for one run."""

    similarity: np.ndarray
    features: np.ndarray
    seconds: float
    backend: str
    depth: int
    transcript: str | None = None
    labels: dict[str, float] | None = None
    onnx_cosine: float | None = None
    notices: list[str] = dataclasses.field(default_factory=list)


def analyse(
    loaded: LoadedModel,
    audio,
    depth: int,
    layer: int | None = None,
    measure: str = "linear CKA",
    backend: str = PYTORCH,
    sessions: dict | None = None,
) -> Analysis:
    """The whole run behind the button: audio checks, encoder at `depth` (pictures), head output, ONNX backend."""
    config = loaded.config
    waveform, notices = prepare_audio(audio, config.receptive_field)
    depth = int(depth)
    if measure not in SIMILARITIES:
        raise SpaceInputError(f"Unknown similarity {measure!r}; choose one of {', '.join(SIMILARITIES)}.")
    if backend != PYTORCH and backend not in loaded.onnx_files:
        run_onnx(loaded, backend, waveform)  # raises the message that says how to export
    hidden_states, seconds = run_encoder(loaded, waveform, depth)
    layer = depth if layer is None else int(layer)
    if layer > depth:
        notices.append(f"Hidden state {layer} is deeper than the {depth} applications run: showing {depth}.")
        layer = depth
    result = Analysis(
        similarity=similarity_image(similarity_matrix(hidden_states, measure), config, measure),
        features=features_image(hidden_states[layer], layer, config),
        seconds=seconds,
        backend=backend,
        depth=depth,
        notices=notices,
    )
    if backend == PYTORCH:
        if loaded.kind == "ctc":
            result.transcript = transcribe(loaded, waveform)
        elif loaded.kind == "classification":
            result.labels = classify(loaded, waveform)
        return result
    onnx = run_onnx(loaded, backend, waveform, sessions)
    result.seconds, result.depth = onnx["seconds"], config.num_hidden_layers
    result.onnx_cosine = onnx_cosine(loaded, onnx["outputs"], waveform)
    if depth != config.num_hidden_layers:
        notices.append(
            f"The ONNX export always runs all {config.num_hidden_layers} applications (the pictures "
            f"show PyTorch at depth {depth})."
        )
    if loaded.kind == "ctc":
        result.transcript = onnx_transcript(loaded, onnx["outputs"])
    elif loaded.kind == "classification":
        result.labels = onnx_labels(loaded, onnx["outputs"])
    return result


def timing_table(history: list[dict]) -> str:
    """The runs so far as a Markdown table (backend, depth, milliseconds)."""
    if not history:
        return ""
    rows = [f"| {run['run']} | {run['backend']} | {run['depth']} | {run['ms']:.1f} |" for run in history]
    return "| run | backend | layer applications | time (ms) |\n|---|---|---|---|\n" + "\n".join(rows)


def space_models(readme: Path) -> list[str]:
    """The `models:` list of a Space README's metadata block."""
    from huggingface_hub import metadata_load

    return list((metadata_load(readme) or {}).get("models") or [])


def describe(loaded: LoadedModel) -> str:
    """One Markdown line about the loaded model."""
    config = loaded.config
    order = " ".join(f"L{layer}" for layer in distinct_layers(config)[1:])
    extra = {"ctc": "CTC speech recogniser", "classification": "audio classifier", "encoder": "speech encoder"}
    onnx = f"; ONNX: {', '.join(loaded.onnx_files)}" if loaded.onnx_files else ""
    labels = ""
    if loaded.kind == "classification":
        labels = f"; labels: {json.dumps(list(config.id2label.values()))}"
    return (
        f"**{loaded.source}**: ALHuBERT {extra[loaded.kind]}, {config.num_hidden_groups} distinct layers applied "
        f"{config.num_hidden_layers} times ({order}){labels}{onnx}."
    )
