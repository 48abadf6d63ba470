"""Build checkpoints in the original DistilALHuBERT file format from random ALHuBERT models (test data)."""

import argparse
import re
from pathlib import Path

import torch

from alhubert import AlHubertConfig, AlHubertModel


FIXTURES = Path(__file__).parent / "fixtures" / "original"

# Transformers key -> original key, written independently of alhubert.original.conversion's rule table.
_TO_ORIGINAL = (
    (r"^masked_spec_embed$", "mask_emb"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"^feature_projection\.layer_norm\.", "layer_norm."),
    (r"^feature_projection\.projection\.", "post_extract_proj."),
    (r"^encoder\.pos_conv_embed\.conv\.bias$", "encoder.pos_conv.0.bias"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v"),
    (r"^encoder\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"^encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
)


def original_key(key: str, extractor_mode: str) -> str:
    """The original name of a Transformers ALHuBERT state dict key."""
    match = re.match(r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)$", key)
    if match:
        norm = "2" if extractor_mode == "default" else "2.1"
        return f"feature_extractor.conv_layers.{match[1]}.{norm}.{match[2]}"
    for pattern, replacement in _TO_ORIGINAL:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return key  # encoder.layers.{j}.final_layer_norm.*, encoder.layer_norm.* keep their names


def original_config(config: AlHubertConfig, conv_spec: str) -> dict:
    """`Config["alhubert"]` as the original training code stores it for `config`."""
    return {
        "extractor_mode": {"group": "default", "layer": "layer_norm"}[config.feat_extract_norm],
        "extractor_conv_feature_layers": conv_spec,
        "extractor_dropout": 0.0,
        "conv_bias": config.conv_bias,
        "conv_pos": config.num_conv_pos_embeddings,
        "conv_pos_groups": config.num_conv_pos_embedding_groups,
        "encoder_layers": config.num_hidden_groups,
        "repeat_time": config.num_hidden_layers // config.num_hidden_groups,
        "encoder_embed_dim": config.hidden_size,
        "encoder_ffn_embed_dim": config.intermediate_size,
        "encoder_attention_heads": config.num_attention_heads,
        "activation_fn": "gelu",
        "layer_norm_first": config.do_stable_layer_norm,
        "normalize": config.do_normalize,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0,
        "mask_prob": 0.65,
        "mask_length": 10,
        "loss_type": "l2",
        "cosine_loss": 1.0,
    }


def random_original_checkpoint(
    config: AlHubertConfig, conv_spec: str, projection: bool = True, seed: int = 0, hubert_heads: bool = False
) -> tuple[dict, AlHubertModel]:
    """A random `AlHubertModel` for `config` and the original-format checkpoint dict holding the same weights.

    Without `projection` the conv dim must equal the hidden size: the model gets an identity projection and the
    checkpoint no `post_extract_proj`, as in the original. `hubert_heads` adds the `label_embs_concat` and
    `final_proj.*` tensors of checkpoints trained with HuBERT-style targets.
    """
    torch.manual_seed(seed)
    model = AlHubertModel(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # non-trivial norms and biases, so that a misplaced tensor shows
            parameter.add_(0.1 * torch.randn_like(parameter))
        if not projection:
            model.feature_projection.projection.weight.copy_(torch.eye(config.hidden_size))
            model.feature_projection.projection.bias.zero_()
    extractor_mode = "default" if config.feat_extract_norm == "group" else "layer_norm"
    state_dict = {
        original_key(key, extractor_mode): tensor.clone()
        for key, tensor in model.state_dict().items()
        if projection or not key.startswith("feature_projection.projection.")
    }
    if hubert_heads:
        state_dict["label_embs_concat"] = torch.randn(10, 8)
        state_dict["final_proj.weight"] = torch.randn(8, config.hidden_size)
        state_dict["final_proj.bias"] = torch.randn(8)
    checkpoint = {
        "alhubert": state_dict,
        "Config": {
            "alhubert": original_config(config, conv_spec),
            "teacher": {"model": "hubert_local", "path": "/path/to/hubert_base_ls960.pt"},
            "task": {"sequence_length": 250000},
            "audio": {"target_level": "None"},
        },
        "Optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]},
        "Step": 10,
        "Args": argparse.Namespace(upstream="alhubert", expname="test", seed=1337),
        "dictionaries": [],
    }
    return checkpoint, model


def fixture_inputs(name: str) -> tuple[dict, torch.Tensor]:
    """The reference tensors of fixture `name` and the sample-level attention mask of its `wav_padded`."""
    from safetensors.torch import load_file

    reference = load_file(FIXTURES / f"{name}_reference.safetensors")
    samples = torch.arange(reference["wav_padded"].shape[1])
    attention_mask = (samples[None] < reference["wav_lengths"][:, None]).long()
    return reference, attention_mask


def max_difference_on_frames(outputs_last, outputs_hidden, reference) -> float:
    """Largest absolute difference to the fixture over `last_hidden_state` and every `hidden_states.{i}` (original
    numbering), on real frames only."""
    frames = reference["frame_mask"].bool()
    differences = [(outputs_last - reference["last_hidden_state"])[frames].abs().max()]
    count = sum(1 for key in reference if key.startswith("hidden_states."))
    assert len(outputs_hidden) == count, (len(outputs_hidden), count)
    for index, hidden in enumerate(outputs_hidden):
        differences.append((hidden - reference[f"hidden_states.{index}"])[frames].abs().max())
    return max(float(difference) for difference in differences)
