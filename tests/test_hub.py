import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_config_kwargs
from helpers_remote import run_without_package

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.hub.upload import stage_for_upload


PUSH_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "push_to_hub.py"


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.slow
def test_staged_folder_loads_and_extracts_features_without_the_package(model_dir, tmp_path):
    (model_dir / "optimizer.pt").write_bytes(b"training state")  # must not be uploaded
    (model_dir / "checkpoint-10").mkdir()
    staged = stage_for_upload(model_dir, tmp_path / "staged", repo_id="someone/tiny")
    remote_code = {
        "audio.py",
        "configuration_alhubert.py",
        "fast_cpu_path.py",
        "modeling_alhubert.py",
        "pipeline_audio_features.py",
    }
    assert set(staged) == {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", *remote_code}
    config = json.loads((tmp_path / "staged" / "config.json").read_text())
    assert config["custom_pipelines"]["audio-feature-extraction"]["impl"].startswith("pipeline_audio_features.")

    waveform = np.random.default_rng(0).standard_normal(12000).astype(np.float32)
    model = AlHubertModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(waveform)[None], output_hidden_states=True).hidden_states[4][0].numpy()
    np.save(tmp_path / "waveform.npy", waveform)
    np.save(tmp_path / "expected.npy", expected)
    output = run_without_package(
        """
        import numpy as np
        from transformers import AutoModel, pipeline
        model = AutoModel.from_pretrained("staged", trust_remote_code=True)
        print(type(model).__module__.startswith("transformers_modules"), type(model).__name__)
        extractor = pipeline("audio-feature-extraction", model="staged", trust_remote_code=True)
        features = extractor(np.load("waveform.npy"), layer=4)
        np.testing.assert_allclose(features, np.load("expected.npy"), atol=1e-5, rtol=0)
        print(type(extractor).__name__, features.shape)
        """,
        cwd=tmp_path,
    )
    assert "True AlHubertModel" in output
    assert f"AudioFeatureExtractionPipeline {expected.shape}" in output


def test_staging_refuses_weights_that_do_not_match_the_config(model_dir, tmp_path):
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["num_hidden_groups"] = 3  # the saved weights only hold 2 distinct layers
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not match the config"):
        stage_for_upload(model_dir, tmp_path / "staged")
    assert not (tmp_path / "staged").exists()


def test_staging_refuses_a_non_empty_staging_folder(model_dir, tmp_path):
    (tmp_path / "staged").mkdir()
    (tmp_path / "staged" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        stage_for_upload(model_dir, tmp_path / "staged")
    assert (tmp_path / "staged" / "keep.txt").read_text() == "user data"


def run_push_script(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [str(PUSH_SCRIPT), *args])
    runpy.run_path(str(PUSH_SCRIPT), run_name="__main__")


def test_push_script_refuses_a_folder_without_weights(model_dir, monkeypatch):
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(SystemExit, match="refusing to upload .*no \\*.safetensors weights"):
        run_push_script(monkeypatch, "--model_dir", str(model_dir), "--repo_id", "someone/tiny", "--dry_run")


def test_push_script_dry_run_stages_without_uploading(model_dir, tmp_path, monkeypatch):
    staging_dir = tmp_path / "staged"
    run_push_script(
        monkeypatch,
        "--model_dir",
        str(model_dir),
        "--repo_id",
        "someone/tiny",
        "--staging_dir",
        str(staging_dir),
        "--dry_run",
    )
    assert (staging_dir / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    assert "someone/tiny" in (staging_dir / "README.md").read_text()


def test_push_script_stages_a_superb_asr_model_labelled_with_its_metrics(tmp_path, monkeypatch):
    from huggingface_hub import ModelCard

    from alhubert import AlHubertSuperbConfig, AlHubertSuperbForCTC
    from alhubert.models.modeling_superb import SUPERB_AUTO_MAP

    torch.manual_seed(0)
    model_dir = tmp_path / "asr"
    AlHubertSuperbForCTC(AlHubertSuperbConfig(**tiny_config_kwargs(), superb_lstm_size=8)).save_pretrained(model_dir)
    assert not (model_dir / "README.md").exists()  # save_pretrained writes no card: push-to-hub writes it
    (model_dir / "eval_results.json").write_text(json.dumps({"eval_wer": 0.5, "eval_cer": 0.25, "eval_loss": 3.0}))
    staging_dir = tmp_path / "staged"
    run_push_script(
        monkeypatch,
        "--model_dir",
        str(model_dir),
        "--repo_id",
        "someone/asr",
        "--staging_dir",
        str(staging_dir),
        "--dry_run",
    )
    config = json.loads((staging_dir / "config.json").read_text())
    assert config["auto_map"] == SUPERB_AUTO_MAP and "custom_pipelines" in config
    card = ModelCard.load(staging_dir / "README.md")
    assert card.data.pipeline_tag == "automatic-speech-recognition"
    metrics = {m["type"]: m["value"] for m in card.data.to_dict()["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"wer": 0.5, "cer": 0.25}
    assert "distilled from" not in card.text and "base_model" not in card.data.to_dict()
