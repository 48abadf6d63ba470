"""The Space's logic (spaces/alhubert/space_analysis.py and app.default_model), without Gradio, on tiny models."""

import numpy as np
import pytest
import soundfile
import torch
from helpers import save_tiny_ctc, tiny_config_kwargs
from space_app import DEMO_CLIP, SPACE_DIR
from space_app import space_analysis as analysis

from alhubert import AlHubertConfig, AlHubertForSequenceClassification, AlHubertModel, default_feature_extractor


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory):
    return save_tiny_ctc(tmp_path_factory.mktemp("space-ctc"))


@pytest.fixture(scope="module")
def ctc(ctc_dir):
    return analysis.load_model(str(ctc_dir))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("space-classifier")
    labels = ["yes", "no", "up", "down", "left", "right", "stop"]
    torch.manual_seed(0)
    config = AlHubertConfig(
        **tiny_config_kwargs(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: index for index, label in enumerate(labels)},
            classifier_proj_size=16,
        )
    )
    config.architectures = ["AlHubertForSequenceClassification"]
    AlHubertForSequenceClassification(config).save_pretrained(folder)
    default_feature_extractor(config).save_pretrained(folder)
    return analysis.load_model(str(folder))


@pytest.fixture(scope="module")
def block_encoder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("space-encoder")
    config = AlHubertConfig(**tiny_config_kwargs(layer_sharing="block", num_hidden_groups=3))
    AlHubertModel(config).save_pretrained(folder)
    default_feature_extractor(config).save_pretrained(folder)
    return analysis.load_model(str(folder))


def test_models_are_loaded_with_their_head(ctc, classifier, block_encoder):
    assert (ctc.kind, classifier.kind, block_encoder.kind) == ("ctc", "classification", "encoder")
    assert ctc.tokenizer is not None and ctc.encoder is ctc.model.alhubert
    assert block_encoder.encoder is block_encoder.model and block_encoder.onnx_files == {}
    assert "3 distinct layers applied 6 times (L0 L0 L1 L1 L2 L2)" in analysis.describe(block_encoder)


def test_each_application_names_its_distinct_layer(ctc, block_encoder):
    assert analysis.distinct_layers(ctc.config) == [None, 0, 1, 0, 1, 0, 1]
    assert analysis.state_labels(block_encoder.config, depth=4) == ["in", "1:L0", "2:L0", "3:L1", "4:L1"]


def test_linear_cka_is_invariant_to_rotation_and_scale_and_low_for_unrelated_features():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((400, 24))
    rotation, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    assert analysis.linear_cka(features, 3.0 * features @ rotation) == pytest.approx(1.0)
    assert analysis.linear_cka(features, rng.standard_normal((400, 24))) < 0.2
    assert analysis.mean_cosine(features, 2.0 * features) == pytest.approx(1.0)
    assert analysis.mean_cosine(features, -features) == pytest.approx(-1.0)


def test_similarity_matrix_is_symmetric_with_a_unit_diagonal():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((50, 8))
    states = [base, base + 0.1 * rng.standard_normal((50, 8)), rng.standard_normal((50, 8))]
    for measure in analysis.SIMILARITIES:
        matrix = analysis.similarity_matrix(states, measure)
        np.testing.assert_allclose(matrix, matrix.T)
        np.testing.assert_allclose(np.diag(matrix), 1.0)
        assert matrix[0, 1] > 0.9 > matrix[0, 2]


def test_principal_components_recover_the_strongest_direction_over_time():
    rng = np.random.default_rng(2)
    time = np.linspace(0, 4 * np.pi, 300)
    direction = rng.standard_normal(16)
    features = 5 * np.outer(np.sin(time), direction) + 0.1 * rng.standard_normal((300, 16))
    components = analysis.principal_components(features, count=4)
    assert components.shape == (4, 300)
    assert abs(np.corrcoef(components[0], np.sin(time))[0, 1]) > 0.99


def test_elastic_depth_runs_only_the_first_applications(ctc):
    waveform = analysis.load_audio(str(DEMO_CLIP))
    full, _ = analysis.run_encoder(ctc, waveform, 6)
    shallow, seconds = analysis.run_encoder(ctc, waveform, 3)
    assert len(full) == 7 and len(shallow) == 4 and seconds > 0
    for deep_state, shallow_state in zip(full[:4], shallow):
        np.testing.assert_allclose(shallow_state, deep_state, rtol=1e-4, atol=1e-5)


def test_analysis_of_a_ctc_model_gives_pictures_and_the_greedy_transcript(ctc):
    result = analysis.analyse(ctc, str(DEMO_CLIP), depth=4, layer=2, measure="mean cosine")
    inputs = ctc.feature_extractor(analysis.load_audio(str(DEMO_CLIP)), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = ctc.tokenizer.batch_decode(ctc.model(**inputs).logits.argmax(-1))[0]
    assert result.transcript == expected and expected.strip()
    assert (result.depth, result.backend, result.labels, result.notices) == (4, "PyTorch", None, [])
    for image in (result.similarity, result.features):
        assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 100 and image.std() > 0


def test_the_features_picture_never_shows_a_state_deeper_than_the_run(ctc):
    result = analysis.analyse(ctc, str(DEMO_CLIP), depth=2, layer=5)
    assert any("deeper than the 2 applications" in notice for notice in result.notices)


def test_analysis_of_a_classifier_gives_its_top_labels(classifier):
    result = analysis.analyse(classifier, str(DEMO_CLIP), depth=6)
    assert result.transcript is None and len(result.labels) == 5
    assert set(result.labels) <= set(classifier.config.id2label.values())
    scores = list(result.labels.values())
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6


def test_long_clips_are_cut_to_the_limit_with_a_notice(tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, 0.1 * np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32), 16000)
    waveform, notices = analysis.prepare_audio(str(path), 400, max_seconds=2)
    assert len(waveform) == 32000 and "first 2 s" in notices[0]


def test_microphone_pcm_at_another_rate_is_resampled(ctc):
    pcm = (8000 * np.sin(np.linspace(0, 2000, 44100))).astype(np.int16)
    waveform, notices = analysis.prepare_audio((44100, pcm), 400)
    assert len(waveform) == 16000 and notices == [] and 0.2 < np.abs(waveform).max() < 0.3


@pytest.mark.slow
def test_the_onnx_export_is_an_alternative_backend(tmp_path):
    pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime (the onnx extra)")
    from alhubert.inference.onnx_export import export_onnx

    folder = save_tiny_ctc(tmp_path / "ctc")
    export_onnx(folder, folder, quantize="int8")
    loaded = analysis.load_model(str(folder))
    assert list(loaded.onnx_files) == ["ONNX float32", "ONNX int8"]
    pytorch = analysis.analyse(loaded, str(DEMO_CLIP), depth=6)
    sessions = {}
    fp32 = analysis.analyse(loaded, str(DEMO_CLIP), depth=3, backend="ONNX float32", sessions=sessions)
    assert fp32.onnx_cosine > 0.9999 and fp32.transcript == pytorch.transcript and fp32.depth == 6
    assert any("always runs all 6 applications" in notice for notice in fp32.notices)
    int8 = analysis.analyse(loaded, str(DEMO_CLIP), depth=6, backend="ONNX int8", sessions=sessions)
    assert 0.9 < int8.onnx_cosine < 1.0 and set(sessions) == {"ONNX float32", "ONNX int8"}


def test_timing_table_lists_every_run():
    table = analysis.timing_table(
        [
            {"run": 1, "backend": "PyTorch", "depth": 6, "ms": 12.345},
            {"run": 2, "backend": "PyTorch", "depth": 2, "ms": 4.5},
        ]
    )
    assert table.splitlines()[2:] == ["| 1 | PyTorch | 6 | 12.3 |", "| 2 | PyTorch | 2 | 4.5 |"]


def test_the_default_model(monkeypatch, tmp_path):
    import app

    monkeypatch.setenv("ALHUBERT_SPACE_MODEL", "someone/model")
    assert app.default_model() == "someone/model"
    monkeypatch.delenv("ALHUBERT_SPACE_MODEL")
    monkeypatch.setattr(app, "DEMO_SCRIPT", tmp_path / "absent.py")  # as on the Hub: no checkout around the app
    assert app.default_model() == analysis.space_models(SPACE_DIR / "README.md")[0] == "alhubert/alhubert-small"


@pytest.mark.slow
def test_the_default_model_is_the_demo_student_built_on_first_use(monkeypatch, tmp_path, demo_cache):
    import subprocess

    import app

    monkeypatch.delenv("ALHUBERT_SPACE_MODEL", raising=False)
    monkeypatch.setattr(app, "DEMO_STUDENT", tmp_path / "demo-student")
    commands, real_run = [], subprocess.run

    def run_briefly(command, **kwargs):  # the demo job as the app runs it, shortened to 2 optimizer steps
        commands.append(command)
        return real_run([*command, "--max_steps", "2"], **kwargs)

    monkeypatch.setattr(app.subprocess, "run", run_briefly)
    assert app.default_model() == str(tmp_path / "demo-student")
    assert commands[0][1:] == [str(app.DEMO_SCRIPT), "--output_dir", str(tmp_path / "demo-student")]
    assert analysis.load_model(app.default_model()).kind == "encoder" and len(commands) == 1  # built once
