"""`alhubert finetune-ctc` (alhubert.training.run_finetune_ctc): the full recipe trains, evaluates and reloads
through the ASR pipeline; bad input."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from safetensors.torch import load_file
from transformers import pipeline

from alhubert import AlHubertConfig, AlHubertForCTC, AlHubertModel
from alhubert.training import run_finetune_ctc
from alhubert.training.ctc_vocabulary import VOCABULARY, build_tokenizer, normalize_transcript


REPO = Path(__file__).resolve().parents[1]
DEMO_CORPUS = REPO / "data" / "demo_corpus"


@pytest.fixture(scope="module")
def finetune_ctc():
    return run_finetune_ctc


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    torch.manual_seed(0)
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).save_pretrained(folder)
    return str(folder)


def demo_args(student, output_dir, *extra):
    return [
        "--model_name_or_path",
        student,
        "--output_dir",
        str(output_dir),
        "--librispeech_root",
        str(DEMO_CORPUS),
        "--librispeech_sets",
        "train-clean-demo",
        "--eval_librispeech_sets",
        "dev-clean-demo",
        "--max_train_samples",
        "8",
        "--max_eval_samples",
        "4",
        "--do_train",
        "--do_eval",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "4",
        "--learning_rate",
        "1e-3",
        "--report_to",
        "none",
        "--use_cpu",
        "--save_strategy",
        "no",
        *extra,
    ]


def test_normalize_transcript_maps_and_counts_out_of_vocabulary_characters():
    text, dropped = normalize_transcript("Café  “don’t” stop: 42 times!\tok")
    assert text == "CAFE DON'T STOP TIMES OK"
    assert dropped == {"“": 1, "”": 1, ":": 1, "4": 1, "2": 1, "!": 1}
    tokenizer = build_tokenizer()
    assert tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))) == list(VOCABULARY)
    assert tokenizer.decode(tokenizer("DON'T STOP").input_ids, group_tokens=False) == "DON'T STOP"


@pytest.mark.slow
def test_full_recipe_trains_evaluates_and_transcribes_through_the_pipeline(finetune_ctc, tiny_student, tmp_path):
    output_dir = tmp_path / "asr"
    trainer = finetune_ctc.main(demo_args(tiny_student, output_dir, "--train_sampling_strategy", "group_by_length"))
    assert trainer.state.global_step == 2
    metrics = json.loads((output_dir / "eval_results.json").read_text())
    assert 0 <= metrics["eval_cer"] and 0 <= metrics["eval_wer"] and np.isfinite(metrics["eval_loss"])
    assert metrics["skipped_audio_files"] == 0

    saved = load_file(output_dir / "model.safetensors")
    initial = load_file(Path(tiny_student) / "model.safetensors")
    conv = "feature_extractor.conv_layers.0.conv.weight"
    query = "encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(saved[f"alhubert.{conv}"], initial[conv])  # feature encoder frozen
    assert not torch.equal(saved[f"alhubert.{query}"], initial[query])  # transformer fine-tuned

    recognizer = pipeline("automatic-speech-recognition", model=str(output_dir))
    assert isinstance(recognizer.model, AlHubertForCTC)
    assert recognizer.model.config.vocab_size == len(VOCABULARY)
    text = recognizer(str(next((DEMO_CORPUS / "dev-clean-demo").rglob("*.flac"))))["text"]
    assert isinstance(text, str) and set(text) <= set(VOCABULARY[3:]) | {" "}

    # examples/transcribe.py decodes with the package's loader: it works without the FFmpeg program (empty PATH), which
    # Transformers' pipeline needs for a file path (found on a GPU machine without FFmpeg).
    clip = str(next((DEMO_CORPUS / "dev-clean-demo").rglob("*.flac")))
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "transcribe.py"), "--model", str(output_dir), clip],
        env={**os.environ, "PATH": "", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(clip + "\t"), result.stdout


def test_refuses_to_overwrite_a_saved_model(finetune_ctc, tiny_student, tmp_path):
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).save_pretrained(tmp_path / "existing")
    before = (tmp_path / "existing" / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="is not empty"):
        finetune_ctc.main(demo_args(tiny_student, tmp_path / "existing"))
    assert (tmp_path / "existing" / "model.safetensors").read_bytes() == before


def write_transcribed_folder(root, clips):
    """clips: name -> (waveform, sampling_rate, transcript), as an audiofolder with metadata.csv."""
    root.mkdir()
    lines = ["file_name,text"]
    for name, (wave, rate, text) in clips.items():
        soundfile.write(root / name, wave, rate)
        lines.append(f'{name},"{text}"')
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return str(root)


def noise(seconds, rate=16000, channels=1, seed=0):
    shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def folder_args(student, folder, output_dir, *extra):
    return [
        "--model_name_or_path",
        student,
        "--audiofolder",
        folder,
        "--output_dir",
        str(output_dir),
        "--do_train",
        "--max_steps",
        "1",
        "--per_device_train_batch_size",
        "3",
        "--report_to",
        "none",
        "--use_cpu",
        "--save_strategy",
        "no",
        *extra,
    ]


def test_other_rates_stereo_and_foreign_characters_are_handled(finetune_ctc, tiny_student, tmp_path, caplog):
    folder = write_transcribed_folder(
        tmp_path / "clips",
        {
            "narrow.wav": (noise(1.0, rate=8000), 8000, "an eight kilohertz clip"),
            "stereo.wav": (noise(1.0, channels=2), 16000, "a stereo clip"),
            "accents.flac": (noise(1.2), 16000, "naïve café #5 ☺"),
        },
    )
    with caplog.at_level(logging.WARNING):
        trainer = finetune_ctc.main(folder_args(tiny_student, folder, tmp_path / "out"))
    assert trainer.state.global_step == 1
    assert "dropped 3 transcript character(s)" in caplog.text
    texts = sorted(trainer.train_dataset["text"])
    assert texts == ["A STEREO CLIP", "AN EIGHT KILOHERTZ CLIP", "NAIVE CAFE"]


def test_audio_too_short_for_its_transcript_names_the_file(finetune_ctc, tiny_student, tmp_path):
    folder = write_transcribed_folder(
        tmp_path / "clips",
        {"fine.wav": (noise(1.0), 16000, "ok"), "hurried.wav": (noise(0.6), 16000, "far too many words " * 4)},
    )
    with pytest.raises(ValueError, match="hurried.wav"):
        finetune_ctc.main(folder_args(tiny_student, folder, tmp_path / "out"))


def test_empty_or_too_short_audio_names_the_file(finetune_ctc, tiny_student, tmp_path):
    folder = write_transcribed_folder(
        tmp_path / "clips", {"fine.wav": (noise(1.0), 16000, "ok"), "silent.wav": (noise(0.0), 16000, "nothing")}
    )
    with pytest.raises(ValueError, match="silent.wav"):
        finetune_ctc.main(folder_args(tiny_student, folder, tmp_path / "out"))


def test_missing_text_column_lists_the_columns(finetune_ctc, tiny_student, tmp_path):
    folder = write_transcribed_folder(tmp_path / "clips", {"fine.wav": (noise(1.0), 16000, "ok")})
    with pytest.raises(ValueError, match=r"\['sentence'\].*\['audio', 'text'\]"):
        finetune_ctc.main(folder_args(tiny_student, folder, tmp_path / "out", "--text_column_name", "sentence"))
