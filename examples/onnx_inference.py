#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Run an exported ALHuBERT with ONNX Runtime alone: no PyTorch, no Transformers, only onnxruntime, numpy, soundfile.

Export first (with this package and PyTorch installed, anywhere), then copy the folder to the device:

    alhubert export onnx alhubert-small alhubert-small-onnx --quantize int8 --all-hidden-states
    python examples/onnx_inference.py alhubert-small-onnx speech.flac --output features.npy            # last layer
    python examples/onnx_inference.py alhubert-small-onnx speech.flac --output layer4.npy --layer 4 --quantized
    python examples/onnx_inference.py my-ctc-model-onnx speech.flac     # a CTC export: prints the greedy transcript

The audio must be 16 kHz (other rates are refused with a message: resample first, e.g. `ffmpeg -i in.mp3 -ar 16000
out.wav`); several channels are averaged to mono. Features are saved as a (frames, hidden_size) float32 array.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import soundfile


def load_waveform(path: str, sampling_rate: int, normalize: bool) -> np.ndarray:
    """The file as a mono float32 waveform at `sampling_rate` (zero mean and unit variance when `normalize`)."""
    waveform, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if rate != sampling_rate:
        raise SystemExit(
            f"error: {path} is sampled at {rate} Hz but the model needs {sampling_rate} Hz; resample it first "
            f"(e.g. ffmpeg -i {path} -ar {sampling_rate} out.wav)."
        )
    waveform = waveform.mean(axis=1)
    if not np.isfinite(waveform).all():
        raise SystemExit(f"error: {path} holds NaN or infinite samples; the file is damaged: clean or re-encode it.")
    if normalize:  # as Wav2Vec2FeatureExtractor(do_normalize=True)
        waveform = (waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)
    return waveform.astype(np.float32)


def read_flag(settings: dict, name: str, path: Path) -> bool:
    """A boolean setting of a JSON config, read strictly: a JSON true/false (a string such as "no" is not True)."""
    value = settings.get(name, False)
    if not isinstance(value, bool):
        raise SystemExit(f"error: {path}: {name} must be true or false (a JSON boolean), got {value!r}; fix the file.")
    return value


def receptive_field(config: dict) -> int:
    """Fewest samples that give one output frame (400 for HuBERT's feature encoder), from the exported config.json."""
    field = 1
    for kernel, stride in reversed(list(zip(config.get("conv_kernel", []), config.get("conv_stride", [])))):
        field = (field - 1) * stride + kernel
    return field


def greedy_transcript(logits: np.ndarray, export_dir: Path) -> str:
    """Greedy CTC decoding with the exported `vocab.json`: best token per frame, repeats merged, blanks dropped."""
    vocabulary = json.loads((export_dir / "vocab.json").read_text(encoding="utf-8"))
    tokenizer_config_path = export_dir / "tokenizer_config.json"
    tokenizer_config = (
        json.loads(tokenizer_config_path.read_text(encoding="utf-8")) if tokenizer_config_path.exists() else {}
    )
    tokens = {index: token for token, index in vocabulary.items()}
    blank = tokenizer_config.get("pad_token", "<pad>")
    delimiter = tokenizer_config.get("word_delimiter_token", "|")
    best = logits.argmax(axis=-1)
    merged = [index for position, index in enumerate(best) if position == 0 or index != best[position - 1]]
    text = "".join(" " if tokens[index] == delimiter else tokens[index] for index in merged if tokens[index] != blank)
    return " ".join(text.split())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", type=Path, help="Folder written by `alhubert export onnx`.")
    parser.add_argument("audio", help="16 kHz audio file (wav, flac, ogg: whatever soundfile reads).")
    parser.add_argument("--output", help="Where to save the features (.npy); default: print their shape only.")
    parser.add_argument("--layer", type=int, help="hidden_states index (needs an export with --all-hidden-states).")
    parser.add_argument("--quantized", action="store_true", help="Run onnx/model_quantized.onnx (int8).")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default).")
    args = parser.parse_args()

    model_path = args.export_dir / "onnx" / ("model_quantized.onnx" if args.quantized else "model.onnx")
    if not model_path.is_file():
        parser.error(
            f"{model_path} not found; export with `alhubert export onnx` (and --quantize int8 for --quantized)."
        )
    preprocessor_path = args.export_dir / "preprocessor_config.json"
    preprocessor = json.loads(preprocessor_path.read_text(encoding="utf-8")) if preprocessor_path.exists() else {}
    try:
        waveform = load_waveform(
            args.audio,
            preprocessor.get("sampling_rate", 16000),
            read_flag(preprocessor, "do_normalize", preprocessor_path),
        )
    except (OSError, RuntimeError) as error:  # soundfile: missing, unreadable or not audio
        raise SystemExit(f"error: cannot read {args.audio}: {' '.join(str(error).split())}") from None
    config_path = args.export_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    field = receptive_field(config) if config.get("conv_kernel") else 400
    if waveform.shape[0] < field:
        raise SystemExit(
            f"error: {args.audio} has {waveform.shape[0]} samples, fewer than the model's receptive field ({field} "
            f"samples, {1000 * field / preprocessor.get('sampling_rate', 16000):.0f} ms): give longer audio."
        )
    layers = config.get("num_hidden_layers")
    if args.layer is not None and isinstance(layers, int) and not 0 <= args.layer <= layers:
        raise SystemExit(f"error: --layer must be between 0 and {layers} (0: encoder input, k: layer application k).")

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    try:
        session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
        raise SystemExit(
            f"error: {model_path} is not a readable ONNX model ({' '.join(str(error).split())[:200]}); "
            "export it again with `alhubert export onnx`."
        ) from None
    output_names = [output.name for output in session.get_outputs()]
    if args.layer is not None and "hidden_states" not in output_names:
        parser.error("--layer needs an export with all hidden states (alhubert export onnx ... --all-hidden-states).")
    inputs = {"input_values": waveform[None], "attention_mask": np.ones((1, waveform.shape[0]), dtype=np.int64)}
    outputs = dict(zip(output_names, session.run(None, inputs)))
    if not all(np.isfinite(output).all() for output in outputs.values()):
        raise SystemExit(
            f"error: the model {model_path} gives NaN or infinite outputs for {args.audio} although the audio is "
            "finite: its weights overflow (the model is damaged); nothing was saved. Export an earlier checkpoint."
        )

    if "logits" in outputs and (args.export_dir / "vocab.json").exists() and args.layer is None:
        print(greedy_transcript(outputs["logits"][0], args.export_dir))
        return
    features = outputs["hidden_states"][args.layer, 0] if args.layer is not None else outputs[output_names[0]][0]
    if args.output:
        np.save(args.output, features)
        print(f"Saved features {features.shape} to {args.output}")
    else:
        print(f"Features {features.shape}; pass --output features.npy to save them.")


if __name__ == "__main__":
    sys.exit(main())
