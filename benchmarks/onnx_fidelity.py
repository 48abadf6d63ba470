#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Size and fidelity of the ONNX exports (float32 and int8) against the PyTorch model, on real speech.

1. Encoder: the "small" preset (or `--model_name_or_path`) is exported with `export_onnx(..., quantize="int8",
   all_hidden_states=True)`; reported are both file sizes and, over the utterances of the demo corpus's dev split
   (each run alone, unpadded), the mean cosine similarity per hidden state between ONNX Runtime and PyTorch float32,
   and the largest absolute difference of the float32 export. With the preset's random weights this measures the
   numerics of the export and of int8 only, not the quality of trained features.
2. Downstream (with `--ctc_model`, a fine-tuned CTC folder with its processor, e.g. the `--output_dir` of
   `benchmarks/finetune_learning.py`): greedy CER and WER on the same utterances through PyTorch float32, the
   float32 export and the int8 export, decoded by the same tokenizer.

    python benchmarks/onnx_fidelity.py
    python benchmarks/onnx_fidelity.py --ctc_model outputs/ctc-demo [--encoder false]
"""

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
import numpy as np
import soundfile
import torch
from transformers import AutoProcessor, HfArgumentParser

from alhubert import AlHubertConfig, AlHubertForCTC, AlHubertModel
from alhubert.inference.onnx_export import export_onnx
from alhubert.training.ctc_vocabulary import normalize_transcript


REPO = Path(__file__).resolve().parents[1]


@dataclass
class FidelityArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Encoder to export (default: the small preset with random weights)."}
    )
    ctc_model: str | None = field(default=None, metadata={"help": "Fine-tuned CTC model folder for the CER check."})
    encoder: bool = field(default=True, metadata={"help": "Measure the encoder part (false: only the CER check)."})
    corpus: str = field(
        default=str(REPO / "data" / "demo_corpus" / "dev-clean-demo"),
        metadata={"help": "LibriSpeech-layout folder of 16 kHz .flac files with .trans.txt transcripts."},
    )
    threads: int = field(default=2, metadata={"help": "Threads of PyTorch and ONNX Runtime."})
    seed: int = field(default=0, metadata={"help": "Seed of the random preset weights."})


def load_corpus(folder: str) -> list[tuple[str, np.ndarray, str]]:
    """(utterance id, 16 kHz waveform, transcript) for every utterance in a LibriSpeech-layout folder."""
    utterances = []
    for transcripts in sorted(Path(folder).rglob("*.trans.txt")):
        for line in transcripts.read_text(encoding="utf-8").splitlines():
            key, text = line.split(" ", 1)
            waveform, rate = soundfile.read(transcripts.parent / f"{key}.flac", dtype="float32")
            if rate != 16000:
                raise ValueError(f"{key}.flac is {rate} Hz; this benchmark expects 16 kHz audio.")
            utterances.append((key, waveform, text))
    return utterances


def session(path: Path, threads: int):
    """An ONNX Runtime CPU session (imported here: `load_corpus` is shared with benchmarks/bf16_fidelity.py)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_inputs(waveform: np.ndarray) -> dict:
    return {"input_values": waveform[None], "attention_mask": np.ones((1, waveform.shape[0]), dtype=np.int64)}


def encoder_fidelity(args, utterances, workdir: str) -> dict:
    """File sizes, and per hidden state the mean cosine of each export to PyTorch float32 over all frames."""
    model_dir = args.model_name_or_path
    if model_dir is None:
        torch.manual_seed(args.seed)
        model_dir = os.path.join(workdir, "small")
        AlHubertModel(AlHubertConfig.from_preset("small")).save_pretrained(model_dir)
    files = export_onnx(model_dir, os.path.join(workdir, "export"), quantize="int8", all_hidden_states=True)
    model = AlHubertModel.from_pretrained(model_dir).eval()
    sessions = {kind: session(path, args.threads) for kind, path in files.items()}
    sums = dict.fromkeys(files, 0.0)
    max_abs = 0.0
    frames = 0
    for _, waveform, _ in utterances:
        with torch.inference_mode():
            reference = torch.stack(model(torch.from_numpy(waveform)[None], output_hidden_states=True).hidden_states)[
                :, 0
            ].numpy()
        frames += reference.shape[1]
        for kind, onnx_session in sessions.items():
            hidden_states = onnx_session.run(["hidden_states"], onnx_inputs(waveform))[0][:, 0]
            cosine = (hidden_states * reference).sum(-1) / (
                np.linalg.norm(hidden_states, axis=-1) * np.linalg.norm(reference, axis=-1)
            )
            sums[kind] = sums[kind] + cosine.sum(axis=1)  # per hidden state, summed over frames
            if kind == "fp32":
                max_abs = max(max_abs, float(np.abs(hidden_states - reference).max()))
    return {
        "model": args.model_name_or_path or "small preset, random weights",
        "file_mb": {kind: round(path.stat().st_size / 1e6, 2) for kind, path in files.items()},
        "utterances": len(utterances),
        "frames": frames,
        "fp32_max_abs_diff": max_abs,
        "mean_cosine_per_hidden_state": {
            kind: [round(float(v), 5) for v in total / frames] for kind, total in sums.items()
        },
    }


def ctc_fidelity(args, utterances, workdir: str) -> dict:
    """Greedy CER/WER of PyTorch float32 and of both exports, decoded with the model's own tokenizer."""
    files = export_onnx(args.ctc_model, os.path.join(workdir, "ctc"), quantize="int8")
    model = AlHubertForCTC.from_pretrained(args.ctc_model).eval()
    tokenizer = AutoProcessor.from_pretrained(args.ctc_model).tokenizer
    sessions = {kind: session(path, args.threads) for kind, path in files.items()}
    references = [normalize_transcript(text)[0] for _, _, text in utterances]
    predictions = {"pytorch-fp32": [], **{f"onnx-{kind}": [] for kind in files}}
    agreement = {f"onnx-{kind}": 0 for kind in files}
    total_frames = 0
    for _, waveform, _ in utterances:
        with torch.inference_mode():
            best = model(torch.from_numpy(waveform)[None]).logits.argmax(-1)[0].numpy()
        predictions["pytorch-fp32"].append(tokenizer.decode(best.tolist()))
        total_frames += best.shape[0]
        for kind, onnx_session in sessions.items():
            onnx_best = onnx_session.run(["logits"], onnx_inputs(waveform))[0].argmax(-1)[0]
            predictions[f"onnx-{kind}"].append(tokenizer.decode(onnx_best.tolist()))
            agreement[f"onnx-{kind}"] += int((onnx_best == best).sum())
    return {
        "model": args.ctc_model,
        "parameters": model.num_parameters(),
        "file_mb": {kind: round(path.stat().st_size / 1e6, 2) for kind, path in files.items()},
        "utterances": len(utterances),
        "cer": {name: round(jiwer.cer(references, texts), 4) for name, texts in predictions.items()},
        "wer": {name: round(jiwer.wer(references, texts), 4) for name, texts in predictions.items()},
        "frame_argmax_agreement_with_pytorch": {
            name: round(count / total_frames, 4) for name, count in agreement.items()
        },
        "identical_transcripts_to_pytorch": {
            name: sum(a == b for a, b in zip(texts, predictions["pytorch-fp32"]))
            for name, texts in predictions.items()
            if name != "pytorch-fp32"
        },
    }


def main():
    (args,) = HfArgumentParser(FidelityArguments).parse_args_into_dataclasses()
    torch.set_num_threads(args.threads)
    utterances = load_corpus(args.corpus)
    results = {"load_average_at_start": [round(value, 2) for value in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as workdir:
        if args.encoder:
            results["encoder"] = encoder_fidelity(args, utterances, workdir)
        if args.ctc_model:
            results["ctc"] = ctc_fidelity(args, utterances, workdir)
    results["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
