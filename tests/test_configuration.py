import pytest
from helpers import tiny_config_kwargs

from alhubert import AlHubertConfig, AlHubertModel


@pytest.mark.parametrize("preset, parameters", [("small", 23_492_224), ("middle", 30_580_096), ("large", 37_667_968)])
def test_preset_parameter_counts_match_the_released_models(preset, parameters):
    model = AlHubertModel(AlHubertConfig.from_preset(preset))
    assert model.num_parameters() - model.masked_spec_embed.numel() == parameters
    assert len(model.encoder.layers) == model.config.num_hidden_groups
    assert model.config.num_hidden_layers == 12


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="large.*middle.*small"):
        AlHubertConfig.from_preset("tiny")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "divisible by num_attention_heads"),
        ({"conv_dim": (16,) * 6}, "same length"),
        ({"num_hidden_groups": 0}, "between 1 and num_hidden_layers"),
        ({"num_hidden_groups": 7}, "between 1 and num_hidden_layers"),
        ({"layer_sharing": "block", "num_hidden_groups": 4}, "multiple of"),
        ({"layer_sharing": "random"}, "layer_sharing must be one of"),
    ],
)
def test_invalid_configurations_raise_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        AlHubertConfig(**tiny_config_kwargs(**overrides))


def test_sharing_orders():
    cycle = AlHubertConfig(**tiny_config_kwargs(num_hidden_layers=6, num_hidden_groups=2))
    block = AlHubertConfig(**tiny_config_kwargs(num_hidden_layers=6, num_hidden_groups=2, layer_sharing="block"))
    assert [cycle.distinct_layer_index(i) for i in range(6)] == [0, 1, 0, 1, 0, 1]
    assert [block.distinct_layer_index(i) for i in range(6)] == [0, 0, 0, 1, 1, 1]
    odd = AlHubertConfig(**tiny_config_kwargs(num_hidden_layers=5, num_hidden_groups=3))
    assert [odd.distinct_layer_index(i) for i in range(5)] == [0, 1, 2, 0, 1]


def test_receptive_field_of_the_hubert_feature_encoder():
    assert AlHubertConfig().receptive_field == 400


def test_config_round_trip(tmp_path):
    config = AlHubertConfig(**tiny_config_kwargs(layer_sharing="block", num_hidden_groups=3, do_normalize=True))
    config.save_pretrained(tmp_path)
    loaded = AlHubertConfig.from_pretrained(tmp_path)
    assert loaded.model_type == "alhubert"
    assert (loaded.num_hidden_groups, loaded.layer_sharing, loaded.do_normalize) == (3, "block", True)
