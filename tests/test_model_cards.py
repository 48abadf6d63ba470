from pathlib import Path

import pytest
import torch
from helpers import tiny_config_kwargs
from huggingface_hub import ModelCard

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.hub.model_cards import build_model_card, sharing_pattern, write_model_card


MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"


def assert_hub_metadata(card):
    data = card.data.to_dict()
    assert data["language"] == "en"
    assert data["license"] == "apache-2.0"
    assert data["library_name"] == "transformers"
    assert set(data["tags"]) >= {"audio", "speech", "hubert", "distillation", "parameter-sharing"}
    assert data["datasets"] == ["librispeech_asr"]
    assert data["pipeline_tag"] == "feature-extraction"
    assert data["base_model"] == "facebook/hubert-base-ls960"


def test_card_round_trips_through_huggingface_hub(tmp_path):
    config = AlHubertConfig(**tiny_config_kwargs(layer_sharing="block", num_hidden_groups=3))
    card = build_model_card(
        config,
        model_id="someone/tiny-alhubert",
        recipe={"Steps": 1234},
        results={"loss": 0.5},
        base_model="facebook/hubert-base-ls960",
        datasets=["librispeech_asr"],
    )
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert_hub_metadata(loaded)
    assert "L0 L0 L1 L1 L2 L2" in loaded.text
    assert "| Steps | 1,234 |" in loaded.text and "| loss | 0.5 |" in loaded.text
    assert 'AutoModel.from_pretrained("someone/tiny-alhubert", trust_remote_code=True)' in loaded.text
    for heading in ("## Architecture", "## Usage", "## Distillation recipe", "## Limitations", "## Citation"):
        assert heading in loaded.text
    assert "DistilALHuBERT" in loaded.text and "Masked Prediction of Hidden Units" in loaded.text


def test_card_shows_no_size_that_was_not_measured():
    card = build_model_card(AlHubertConfig(**tiny_config_kwargs()))
    assert "Parameters" not in card.text and "file size" not in card.text
    assert "was not recorded" in card.text  # no recipe given: the card says so rather than guessing


def test_write_model_card_measures_the_saved_files(tmp_path):
    model = AlHubertModel(AlHubertConfig(**tiny_config_kwargs()))
    model.save_pretrained(tmp_path)
    card = write_model_card(tmp_path, source="Random weights for a test.")
    expected_parameters = sum(tensor.numel() for tensor in model.state_dict().values())
    expected_size = (tmp_path / "model.safetensors").stat().st_size
    text = (tmp_path / "README.md").read_text()
    assert f"| Parameters (measured) | {expected_parameters:,} |" in text
    assert f"{expected_size:,} bytes" in text
    assert "Random weights for a test." in text
    assert ModelCard.load(tmp_path / "README.md").data.to_dict() == card.data.to_dict()


def test_write_model_card_needs_safetensors_weights(tmp_path):
    AlHubertConfig(**tiny_config_kwargs()).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        write_model_card(tmp_path)
    assert not (tmp_path / "README.md").exists()


@pytest.mark.parametrize("preset", ["small", "middle", "large"])
def test_committed_preset_cards_match_the_presets(preset):
    card = ModelCard.load(MODEL_CARDS / f"alhubert-{preset}.md")
    assert_hub_metadata(card)
    config = AlHubertConfig.from_preset(preset)
    with torch.device("meta"):  # counts without allocating the weights
        model = AlHubertModel(config)
    parameters = sum(tensor.numel() for tensor in model.state_dict().values())
    assert f"| Parameters (measured) | {parameters:,} |" in card.text
    assert f"| Distinct transformer layers (`num_hidden_groups`) | {config.num_hidden_groups} |" in card.text
    assert sharing_pattern(config) in card.text
    float32_bytes = 4 * parameters
    size_row = next(line for line in card.text.splitlines() if line.startswith("| Weights file size"))
    size = int(size_row.split("|")[2].split()[0].replace(",", ""))
    assert float32_bytes < size < float32_bytes + 100_000  # tensors plus the safetensors header


def test_cards_fit_the_task_and_keep_only_real_hub_ids(tmp_path):
    from alhubert import AlHubertForCTC, AlHubertForSequenceClassification

    config = AlHubertConfig(**tiny_config_kwargs(architectures=["AlHubertForCTC"]))
    card = build_model_card(
        config,
        model_id="me/asr",
        base_model="me/student",
        eval_results={"wer": 0.25, "cer": 0.1},
        eval_dataset="dev-clean",
        training_data="LibriSpeech train-clean-100",
    )
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "automatic-speech-recognition" and data["base_model"] == "me/student"
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"wer": 0.25, "cer": 0.1}
    assert "distilled from" not in card.text and "## Distillation recipe" not in card.text
    assert 'pipeline("automatic-speech-recognition"' in card.text and "LibriSpeech train-clean-100" in card.text
    for teacher in ("demo-random-teacher", str(tmp_path), "./local/student", None):
        data = build_model_card(AlHubertConfig(**tiny_config_kwargs()), base_model=teacher).data.to_dict()
        assert "base_model" not in data and "datasets" not in data, teacher
    classifier = AlHubertConfig(
        **tiny_config_kwargs(architectures=["AlHubertForSequenceClassification"], id2label={0: "yes", 1: "no"})
    )
    card = build_model_card(classifier, eval_results={"accuracy": 0.75})
    assert card.data.to_dict()["pipeline_tag"] == "audio-classification" and "2 classes (yes, no)" in card.text
    assert card.data.to_dict()["model-index"][0]["results"][0]["metrics"][0]["type"] == "accuracy"
    del AlHubertForCTC, AlHubertForSequenceClassification


def test_save_pretrained_writes_a_complete_folder_and_no_card(tmp_path):
    # the card is written by the command that knows what to say (convert, distill, fine-tune, push-to-hub)
    import json

    from alhubert import AlHubertSuperbConfig, AlHubertSuperbForCTC
    from alhubert.models.configuration_alhubert import ALHUBERT_AUTO_MAP
    from alhubert.models.modeling_superb import SUPERB_AUTO_MAP

    torch.manual_seed(0)
    encoder_code = {
        "audio.py",
        "configuration_alhubert.py",
        "fast_cpu_path.py",
        "modeling_alhubert.py",
        "pipeline_audio_features.py",
    }
    for model, auto_map, code in (
        (AlHubertModel(AlHubertConfig(**tiny_config_kwargs())), ALHUBERT_AUTO_MAP, encoder_code),
        (
            AlHubertSuperbForCTC(AlHubertSuperbConfig(**tiny_config_kwargs(), superb_lstm_size=8)),
            SUPERB_AUTO_MAP,
            encoder_code | {"modeling_superb.py"},
        ),
    ):
        folder = tmp_path / type(model).__name__
        model.save_pretrained(folder)
        config = json.loads((folder / "config.json").read_text())
        assert config["auto_map"] == auto_map
        assert config["custom_pipelines"]["audio-feature-extraction"]["impl"].startswith("pipeline_audio_features.")
        assert {path.name for path in folder.iterdir()} == {
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
            *code,
        }
    (folder / "README.md").write_text("my own card")
    model.config.auto_map["AutoModelForPreTraining"] = "elsewhere.OtherModel"  # a foreign entry is kept
    model.save_pretrained(folder)
    assert (folder / "README.md").read_text() == "my own card"
    saved_auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert saved_auto_map["AutoModelForPreTraining"] == "elsewhere.OtherModel"


def test_model_push_to_hub_uploads_the_complete_folder_through_transformers(tmp_path, monkeypatch):
    # PreTrainedModel.push_to_hub as Transformers writes it: our save_pretrained's folder, Transformers' card (offline
    # here: the card lookup on the Hub is replaced); the project's card comes from `alhubert push-to-hub`
    import transformers.utils.hub

    commits = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            return type("Url", (), {"repo_id": repo_id})()

        def create_commit(self, repo_id, operations, **kwargs):
            commits.append({op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations})
            return "commit"

    monkeypatch.setattr(transformers.utils.hub, "hf_api", lambda: FakeApi())
    monkeypatch.setattr(
        transformers.utils.hub,
        "create_and_tag_model_card",
        lambda repo_id, tags, token=None: ModelCard("---\nlibrary_name: transformers\n---\nstub"),
    )
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).push_to_hub("someone/tiny")
    (files,) = commits
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "README.md",
        "pipeline_audio_features.py",
        "audio.py",
        "modeling_alhubert.py",
    } <= set(files)
    assert files["README.md"].decode().endswith("stub")


def test_trainer_push_keeps_the_project_card_not_the_trainer_template(tmp_path):
    from transformers import TrainingArguments

    from alhubert import AlHubertForCTC
    from alhubert.training.card_trainer import AlHubertTrainer

    model = AlHubertForCTC(AlHubertConfig(**tiny_config_kwargs()))
    trainer = AlHubertTrainer(
        model=model, args=TrainingArguments(output_dir=str(tmp_path), report_to=[], hub_model_id="someone/asr")
    )
    trainer.save_model()  # the Trainer's save goes through save_pretrained: a complete folder, no card yet
    assert (tmp_path / "pipeline_audio_features.py").is_file() and not (tmp_path / "README.md").exists()
    trainer.create_model_card(model_name="asr", tasks="automatic-speech-recognition")  # what Trainer.push_to_hub calls
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.pipeline_tag == "automatic-speech-recognition" and card.data.license == "apache-2.0"
    assert "someone/asr" in card.text and "This model was trained from scratch" not in card.text
