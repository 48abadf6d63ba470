#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Accuracy of the native bfloat16 path against float32, on real speech (the demo corpus's dev split).

1. Encoder (`--model_name_or_path`, default `outputs/demo-student`: the model `python scripts/demo.py` distils on the
   demo corpus): every utterance runs alone, unpadded, through the float32 model, the native bf16 model
   (`from_pretrained(..., dtype=torch.bfloat16)`: weights in bf16, the CPU fast path's matmul convolutions) and the
   float32 model under bf16 autocast. Reported per hidden state: the mean cosine to float32 over all frames (target:
   >= 0.999), the lowest mean cosine of one utterance, and the largest absolute difference.
2. Downstream (with `--ctc_model`, a fine-tuned CTC folder with its processor, e.g. the `--output_dir` of
   `benchmarks/finetune_learning.py`): greedy CER and WER of float32, native bf16 and autocast, the transcripts
   identical to float32's and the frames whose argmax agrees with float32's, as `benchmarks/onnx_fidelity.py` does
   for the ONNX exports.

    python scripts/demo.py && python benchmarks/bf16_fidelity.py
    python benchmarks/bf16_fidelity.py --ctc_model outputs/ctc-demo [--encoder false]
"""

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
import numpy as np
import torch
from onnx_fidelity import load_corpus
from transformers import AutoModel, AutoModelForCTC, AutoProcessor, HfArgumentParser

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)
from alhubert.training.ctc_vocabulary import normalize_transcript


REPO = Path(__file__).resolve().parents[1]
TARGET_COSINE = 0.999
SETTINGS = ("bf16-native", "bf16-autocast")


@dataclass
class Bf16FidelityArguments:
    model_name_or_path: str = field(
        default=str(REPO / "outputs" / "demo-student"), metadata={"help": "Encoder folder (default: the demo's)."}
    )
    encoder: bool = field(default=True, metadata={"help": "Measure the encoder part (false: only the CER check)."})
    ctc_model: str | None = field(default=None, metadata={"help": "Fine-tuned CTC model folder for the CER check."})
    corpus: str = field(
        default=str(REPO / "data" / "demo_corpus" / "dev-clean-demo"),
        metadata={"help": "LibriSpeech-layout folder of 16 kHz .flac files with .trans.txt transcripts."},
    )
    threads: int = field(default=2, metadata={"help": "torch CPU threads."})
    max_utterances: int | None = field(default=None, metadata={"help": "Only the first N utterances (smoke runs)."})


def load_pair(auto_class, path: str) -> dict:
    """The model at `path` in float32 and in native bf16 (loaded with `dtype=torch.bfloat16`), eval mode."""
    return {
        "float32": auto_class.from_pretrained(path).eval(),
        "bf16-native": auto_class.from_pretrained(path, dtype=torch.bfloat16).eval(),
    }


def run(models: dict, setting: str, waveform: np.ndarray, **kwargs):
    """One utterance through the model of `setting` (float32, bf16-native or bf16-autocast)."""
    model = models["float32" if setting == "bf16-autocast" else setting]
    inputs = torch.from_numpy(waveform)[None].to(model.dtype)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if setting == "bf16-autocast" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        return model(inputs, **kwargs)


def encoder_fidelity(args, utterances) -> dict:
    """Per hidden state: mean cosine to float32 over all frames, lowest per-utterance mean, largest difference."""
    models = load_pair(AutoModel, args.model_name_or_path)
    sums = dict.fromkeys(SETTINGS, 0.0)
    lowest = dict.fromkeys(SETTINGS)
    max_abs = dict.fromkeys(SETTINGS, 0.0)
    frames = 0
    for _, waveform, _ in utterances:
        reference = torch.stack(run(models, "float32", waveform, output_hidden_states=True).hidden_states)[:, 0]
        frames += reference.shape[1]
        for setting in SETTINGS:
            hidden_states = torch.stack(run(models, setting, waveform, output_hidden_states=True).hidden_states)
            hidden_states = hidden_states[:, 0].float()
            cosine = torch.nn.functional.cosine_similarity(hidden_states, reference, dim=-1)  # (states, frames)
            sums[setting] = sums[setting] + cosine.sum(dim=1)
            utterance_mean = cosine.mean(dim=1)
            previous = lowest[setting]
            lowest[setting] = utterance_mean if previous is None else torch.minimum(previous, utterance_mean)
            max_abs[setting] = max(max_abs[setting], (hidden_states - reference).abs().max().item())
    mean = {setting: [round(float(value), 6) for value in total / frames] for setting, total in sums.items()}
    return {
        "model": args.model_name_or_path,
        "parameters": models["float32"].num_parameters(),
        "utterances": len(utterances),
        "frames": frames,
        "mean_cosine_per_hidden_state": mean,
        "lowest_utterance_cosine_per_hidden_state": {
            setting: [round(float(value), 6) for value in values] for setting, values in lowest.items()
        },
        "max_abs_diff": max_abs,
        f"bf16_native_meets_{TARGET_COSINE}": min(mean["bf16-native"]) >= TARGET_COSINE,
    }


def ctc_fidelity(args, utterances) -> dict:
    """Greedy CER/WER of float32, native bf16 and autocast, decoded with the model's own tokenizer."""
    models = load_pair(AutoModelForCTC, args.ctc_model)
    tokenizer = AutoProcessor.from_pretrained(args.ctc_model).tokenizer
    references = [normalize_transcript(text)[0] for _, _, text in utterances]
    predictions = {setting: [] for setting in ("float32", *SETTINGS)}
    agreement = dict.fromkeys(SETTINGS, 0)
    total_frames = 0
    for _, waveform, _ in utterances:
        best = run(models, "float32", waveform).logits.argmax(-1)[0]
        predictions["float32"].append(tokenizer.decode(best.tolist()))
        total_frames += best.shape[0]
        for setting in SETTINGS:
            own_best = run(models, setting, waveform).logits.argmax(-1)[0]
            predictions[setting].append(tokenizer.decode(own_best.tolist()))
            agreement[setting] += int((own_best == best).sum())
    return {
        "model": args.ctc_model,
        "utterances": len(utterances),
        "cer": {name: round(jiwer.cer(references, texts), 4) for name, texts in predictions.items()},
        "wer": {name: round(jiwer.wer(references, texts), 4) for name, texts in predictions.items()},
        "frame_argmax_agreement_with_float32": {
            name: round(count / total_frames, 4) for name, count in agreement.items()
        },
        "identical_transcripts_to_float32": {
            name: sum(a == b for a, b in zip(predictions[name], predictions["float32"])) for name in SETTINGS
        },
    }


def main(argv: list[str] | None = None) -> dict:
    (args,) = HfArgumentParser(Bf16FidelityArguments).parse_args_into_dataclasses(argv)
    torch.set_num_threads(args.threads)
    if args.encoder and not Path(args.model_name_or_path).is_dir():
        raise SystemExit(
            f"error: no model folder at {args.model_name_or_path}; run `python scripts/demo.py` first (it writes "
            "outputs/demo-student) or give --model_name_or_path."
        )
    utterances = load_corpus(args.corpus)[: args.max_utterances]
    results = {"load_average_at_start": [round(value, 2) for value in os.getloadavg()]}
    if args.encoder:
        results["encoder"] = encoder_fidelity(args, utterances)
    if args.ctc_model:
        results["ctc"] = ctc_fidelity(args, utterances)
    results["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
