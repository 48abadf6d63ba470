from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.hub.model_cards import build_model_card, sharing_pattern, write_model_card
from helpers import tiny_config_kwargs

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
    card = build_model_card(config, model_id="someone/tiny-alhubert", recipe={"Steps": 1234}, results={"loss": 0.5})
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
