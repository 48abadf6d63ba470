"""`alhubert finetune-classification` (alhubert.training.run_finetune_classification): audiofolder and datasets
sources, accuracy, audio-classification pipeline."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset
from helpers import tiny_config_kwargs
from transformers import pipeline

from alhubert import AlHubertConfig, AlHubertForSequenceClassification, AlHubertModel
from alhubert.training import run_finetune_classification


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finetune_classification():
    return run_finetune_classification


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    torch.manual_seed(0)
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).save_pretrained(folder)
    return str(folder)


def tone(frequency, seconds=0.6, rate=16000):
    time = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def common_args(student, output_dir):
    return [
        "--model_name_or_path",
        student,
        "--output_dir",
        str(output_dir),
        "--do_train",
        "--do_eval",
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "1e-3",
        "--report_to",
        "none",
        "--use_cpu",
        "--save_strategy",
        "no",
    ]


@pytest.mark.slow
def test_audiofolder_with_label_folders_trains_and_classifies_through_the_pipeline(
    finetune_classification, tiny_student, tmp_path
):
    for label, frequency in (("low", 150.0), ("high", 1200.0)):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for index in range(5):
            soundfile.write(tmp_path / "clips" / label / f"{index}.wav", tone(frequency + 10 * index), 16000)
    output_dir = tmp_path / "kws"
    source = ["--audiofolder", str(tmp_path / "clips"), "--validation_split_percentage", "20"]
    trainer = finetune_classification.main(common_args(tiny_student, output_dir) + source)
    assert trainer.state.global_step == 3
    metrics = json.loads((output_dir / "eval_results.json").read_text())
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0

    classifier = pipeline("audio-classification", model=str(output_dir))
    assert isinstance(classifier.model, AlHubertForSequenceClassification)
    assert set(classifier.model.config.id2label.values()) == {"low", "high"}
    scores = classifier(str(tmp_path / "clips" / "low" / "0.wav"))
    assert {entry["label"] for entry in scores} == {"low", "high"}
    assert abs(sum(entry["score"] for entry in scores) - 1.0) < 1e-4


@pytest.mark.slow
def test_datasets_source_with_string_labels_and_a_named_eval_split(finetune_classification, tiny_student, tmp_path):
    rows = [(tone(f), name) for f, name in ((200.0, "yes"), (900.0, "no"), (210.0, "yes"), (950.0, "no"))]
    dataset = Dataset.from_dict(
        {"speech": [{"array": wave, "sampling_rate": 16000} for wave, _ in rows], "word": [name for _, name in rows]}
    ).cast_column("speech", Audio())
    dataset.train_test_split(test_size=0.5, seed=0).save_to_disk(tmp_path / "words")
    output_dir = tmp_path / "words-model"
    finetune_classification.main(
        common_args(tiny_student, output_dir)
        + [
            "--dataset_name",
            str(tmp_path / "words"),
            "--audio_column_name",
            "speech",
            "--label_column_name",
            "word",
            "--eval_split_name",
            "test",
        ]
    )
    config = json.loads((output_dir / "config.json").read_text())
    assert sorted(config["id2label"].values()) == ["no", "yes"]
    assert "eval_accuracy" in json.loads((output_dir / "eval_results.json").read_text())


def test_missing_label_column_lists_the_columns(finetune_classification, tiny_student, tmp_path):
    Dataset.from_dict({"audio": [{"array": tone(300.0), "sampling_rate": 16000}], "speaker": ["a"]}).cast_column(
        "audio", Audio()
    ).save_to_disk(tmp_path / "data")
    with pytest.raises(ValueError, match=r"\['label'\].*\['audio', 'speaker'\]"):
        finetune_classification.main(
            common_args(tiny_student, tmp_path / "out") + ["--dataset_name", str(tmp_path / "data")]
        )


def test_starts_from_a_plain_hubert_encoder(finetune_classification, tmp_path):
    # A HuBERT-like starting model (its config has no `receptive_field` property): the collator's minimum length comes
    # from the shared receptive_field(config), so this once failed with an AttributeError.
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    kwargs = {key: value for key, value in tiny_config_kwargs().items() if key != "num_hidden_groups"}
    HubertModel(HubertConfig(**kwargs)).save_pretrained(tmp_path / "hubert")
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path / "hubert")
    rows = [(tone(f), name) for f, name in ((200.0, "yes"), (900.0, "no"), (210.0, "yes"), (950.0, "no"))]
    dataset = Dataset.from_dict(
        {"audio": [{"array": wave, "sampling_rate": 16000} for wave, _ in rows], "label": [name for _, name in rows]}
    ).cast_column("audio", Audio())
    dataset.train_test_split(test_size=0.5, seed=0).save_to_disk(tmp_path / "words")
    trainer = finetune_classification.main(
        common_args(str(tmp_path / "hubert"), tmp_path / "out")
        + ["--dataset_name", str(tmp_path / "words"), "--eval_split_name", "test"]
    )
    assert trainer.state.global_step == 3
    assert "eval_accuracy" in json.loads((tmp_path / "out" / "eval_results.json").read_text())
