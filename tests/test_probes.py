"""The SUPERB-style probes of the replication on tiny data: phoneme recognition (CTC over espeak-ng's phonemes,
phoneme error rate) and speaker identification (weighted layer sum, mean pooling, linear classifier, accuracy)."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from alhubert.training import run_finetune_classification, run_finetune_ctc
from alhubert.training.arguments import DataArguments
from alhubert.training.data import load_audio_dataset


REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="needs espeak-ng and sox"
)
COMMON = [
    "--report_to",
    "none",
    "--use_cpu",
    "--dataloader_num_workers",
    "0",
    "--disable_tqdm",
    "true",
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "2",
    "--per_device_eval_batch_size",
    "1",
    "--save_strategy",
    "no",
    "--do_train",
    "--do_eval",
]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "speech"
    load_script("make_speech_corpus").main(
        [
            "--output_dir",
            str(root),
            "--train_utterances",
            "6",
            "--dev_utterances",
            "2",
            "--test_utterances",
            "2",
            "--sid_test_utterances",
            "4",
            "--train_speakers",
            "2",
            "--dev_speakers",
            "1",
            "--test_speakers",
            "1",
            "--num_proc",
            "1",
        ]
    )
    return root


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoder") / "alhubert"
    hubert = load_script("make_hubert").main(
        [
            "--output_dir",
            str(folder.parent / "hubert"),
            "--hidden_size",
            "32",
            "--num_hidden_layers",
            "2",
            "--num_attention_heads",
            "2",
            "--conv_channels",
            "8",
        ]
    )
    return load_script("init_student").main(
        [
            "--teacher_name_or_path",
            str(hubert),
            "--num_hidden_groups",
            "2",
            "--num_hidden_layers",
            "2",
            "--output_dir",
            str(folder),
        ]
    )


def test_librispeech_tables_carry_speakers_and_phonemes(corpus):
    data_args = DataArguments(librispeech_root=str(corpus), librispeech_sets="sid-test", min_length_samples=400)
    rows = load_audio_dataset(data_args, label_column="speaker")
    assert sorted(set(rows["label"])) == ["1000", "1001"]
    data_args.text_column_name = "phonemes"
    phonemes = load_audio_dataset(data_args, require_text=True)["text"]
    assert all(text and not text.isupper() for text in phonemes)


def test_phoneme_recognition_probe_reports_the_phoneme_error_rate(corpus, encoder, tmp_path):
    trainer = run_finetune_ctc.main(
        [
            "--model_name_or_path",
            str(encoder),
            "--recipe",
            "superb",
            "--transcripts",
            "phonemes",
            "--text_column_name",
            "phonemes",
            "--superb_lstm_size",
            "8",
            "--librispeech_root",
            str(corpus),
            "--librispeech_sets",
            "train",
            "--eval_librispeech_sets",
            "test",
            "--output_dir",
            str(tmp_path / "pr"),
            *COMMON,
        ]
    )
    metrics = json.loads((tmp_path / "pr" / "eval_results.json").read_text())
    assert metrics["eval_per"] >= 0 and "eval_cer" not in metrics
    vocabulary = json.loads((tmp_path / "pr" / "vocab.json").read_text())
    spoken = {
        p
        for line in corpus.rglob("train/*/*/*.phonemes.txt")
        for row in line.read_text().splitlines()
        for p in row.split()[1:]
    }
    assert set(vocabulary) == spoken | {"<pad>", "<unk>"} and vocabulary["<pad>"] == 0
    assert trainer.model.config.vocab_size == len(vocabulary)


def test_speaker_identification_probe_reports_accuracy_over_the_training_voices(corpus, encoder, tmp_path):
    trainer = run_finetune_classification.main(
        [
            "--model_name_or_path",
            str(encoder),
            "--freeze_base_model",
            "true",
            "--use_weighted_layer_sum",
            "true",
            "--label_column_name",
            "speaker",
            "--librispeech_root",
            str(corpus),
            "--librispeech_sets",
            "train",
            "--eval_librispeech_sets",
            "sid-test",
            "--min_length_samples",
            "400",
            "--output_dir",
            str(tmp_path / "sid"),
            *COMMON,
        ]
    )
    metrics = json.loads((tmp_path / "sid" / "eval_results.json").read_text())
    assert 0 <= metrics["eval_accuracy"] <= 1
    assert sorted(trainer.model.config.id2label.values()) == ["1000", "1001"]
    trainable = {name for name, parameter in trainer.model.named_parameters() if parameter.requires_grad}
    assert trainable == {"layer_weights", "projector.weight", "projector.bias", "classifier.weight", "classifier.bias"}


def test_mfcc_upstream_is_the_kmeans_features_at_the_model_frames(encoder):
    import numpy as np
    import torch
    from transformers import AutoConfig

    from alhubert.training.hubert_pretraining import frame_counts
    from alhubert.training.kmeans_targets import mfcc_features
    from alhubert.training.mfcc_upstream import MFCC_SHAPE, MfccUpstream

    config = AutoConfig.from_pretrained(encoder, **MFCC_SHAPE)
    waves = torch.randn(2, 8000) * 0.1
    mask = torch.ones(2, 8000, dtype=torch.long)
    mask[1, 5123:] = 0  # an odd length
    output = MfccUpstream(config)(waves, attention_mask=mask)
    assert len(output.hidden_states) == 2 and output.hidden_states[0] is output.last_hidden_state
    short = int(frame_counts(config, 5123))
    assert output.last_hidden_state.shape == (2, int(frame_counts(config, 8000)), 39) and short < 24
    expected = mfcc_features(waves[1, :5123].numpy())[::2][:short]
    np.testing.assert_allclose(output.last_hidden_state[1, :short].numpy(), expected, rtol=1e-6)
    assert not output.last_hidden_state[1, short:].any()


@pytest.mark.parametrize("task", ["asr", "sid"])
def test_mfcc_row_probes_train_only_the_head(corpus, encoder, tmp_path, task):
    data = [
        "--librispeech_root",
        str(corpus),
        "--librispeech_sets",
        "train",
        "--model_name_or_path",
        str(encoder),
        "--upstream",
        "mfcc",
        "--output_dir",
        str(tmp_path / task),
        *COMMON,
    ]
    if task == "asr":
        trainer = run_finetune_ctc.main(
            [*data, "--recipe", "superb", "--superb_lstm_size", "8", "--eval_librispeech_sets", "test"]
        )
        metric, width = "eval_cer", trainer.model.lstm.input_size
    else:
        trainer = run_finetune_classification.main(
            [
                *data,
                "--freeze_base_model",
                "true",
                "--use_weighted_layer_sum",
                "true",
                "--label_column_name",
                "speaker",
                "--eval_librispeech_sets",
                "sid-test",
                "--min_length_samples",
                "400",
            ]
        )
        metric, width = "eval_accuracy", trainer.model.projector.in_features
    extractor = getattr(trainer.processing_class, "feature_extractor", trainer.processing_class)
    assert width == 39 and extractor.do_normalize is False  # MFCC of the audio as kmeans-targets sees it
    assert type(trainer.model.base_model).__name__ == "MfccUpstream"
    assert not any(name.startswith(trainer.model.base_model_prefix) for name, _ in trainer.model.named_parameters())
    assert json.loads((tmp_path / task / "eval_results.json").read_text())[metric] >= 0
