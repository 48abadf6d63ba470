import logging
import warnings

import pytest
import torch
from helpers import padded_batch, tiny_config_kwargs
from safetensors import safe_open
from transformers import AutoModel, HubertConfig, HubertModel
from transformers.utils import logging as transformers_logging

from alhubert import AlHubertConfig, AlHubertForCTC, AlHubertForSequenceClassification, AlHubertModel
from alhubert.models.fast_cpu_path import use_fast_cpu_path


def build(seed=0, **overrides):
    torch.manual_seed(seed)
    return AlHubertModel(AlHubertConfig(**tiny_config_kwargs(**overrides))).eval()


def unrolled_hubert(model: AlHubertModel) -> HubertModel:
    """A plain HubertModel with L layers whose weights are ALHuBERT's distinct layers in application order."""
    config_dict = model.config.to_dict()
    for key in ("model_type", "num_hidden_groups", "layer_sharing", "do_normalize", "auto_map", "architectures"):
        config_dict.pop(key, None)
    hubert = HubertModel(HubertConfig(**config_dict)).eval()
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("encoder.layers."):
            continue
        state[key] = value
    for application in range(model.config.num_hidden_layers):
        distinct = model.config.distinct_layer_index(application)
        for key, value in model.encoder.layers[distinct].state_dict().items():
            state[f"encoder.layers.{application}.{key}"] = value
    hubert.load_state_dict(state, strict=True)
    return hubert


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True},
        {"layer_sharing": "block", "num_hidden_layers": 6, "num_hidden_groups": 3},
        {"num_hidden_layers": 5, "num_hidden_groups": 3},
    ],
    ids=["post-ln-cycle", "pre-ln-layernorm-convbias", "block", "uneven-cycle"],
)
def test_equals_hubert_with_distinct_layers_repeated(overrides):
    model = build(**overrides)
    model.set_fast_cpu_path(False)  # HuBERT's exact arithmetic; the fast path: tests/test_performance_equivalence.py
    hubert = unrolled_hubert(model)
    batch, mask = padded_batch()
    with torch.no_grad():
        ours = model(batch, attention_mask=mask, output_hidden_states=True)
        theirs = hubert(batch, attention_mask=mask, output_hidden_states=True)
    assert len(ours.hidden_states) == model.config.num_hidden_layers + 1 == len(theirs.hidden_states)
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, atol=1e-6, rtol=0)
    for mine, reference in zip(ours.hidden_states, theirs.hidden_states):
        torch.testing.assert_close(mine, reference, atol=1e-6, rtol=0)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def layer_key_counts(names) -> dict[str, int]:
    """Number of tensors stored per distinct layer index (`encoder.layers.<i>.`)."""
    counts = {}
    for name in names:
        if name.startswith("encoder.layers."):
            index = name.split(".")[2]
            counts[index] = counts.get(index, 0) + 1
    return counts


def test_each_distinct_layer_is_stored_once(tmp_path):
    model = build(num_hidden_layers=6, num_hidden_groups=2)
    tensors_per_layer = len(model.encoder.layers[0].state_dict())
    assert layer_key_counts(model.state_dict()) == {"0": tensors_per_layer, "1": tensors_per_layer}
    # the 6 applications run the very same 2 modules (and so the same parameter objects)
    applied = [model.encoder.layers[model.config.distinct_layer_index(i)] for i in range(6)]
    assert applied[0] is applied[2] is applied[4] and applied[1] is applied[3] is applied[5]
    assert applied[0] is not applied[1]
    calls = []
    for layer in model.encoder.layers:
        layer.register_forward_hook(lambda module, args, output: calls.append(module))
    with torch.no_grad():
        model(padded_batch()[0])
    assert calls == applied
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())  # each parameter counted once
    # transformers' logger does not propagate to the root logger: listen to it directly, and to warnings.warn
    transformers_logger = transformers_logging.get_logger("transformers")
    handler = _Records()
    transformers_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as python_warnings:
            warnings.simplefilter("always")
            model.save_pretrained(tmp_path)
            loaded = AutoModel.from_pretrained(tmp_path)
    finally:
        transformers_logger.removeHandler(handler)
    assert [r.getMessage() for r in handler.records] == []
    assert [str(w.message) for w in python_warnings] == []
    with safe_open(tmp_path / "model.safetensors", "pt") as file:
        names = list(file.keys())
    assert layer_key_counts(names) == {"0": tensors_per_layer, "1": tensors_per_layer}  # 2 layers on disk, not 6
    assert len(names) == len(model.state_dict())
    assert type(loaded) is AlHubertModel
    assert loaded.num_parameters() == model.num_parameters()


def test_layerdrop_skips_applications_only_in_training():
    model = build(num_hidden_layers=6, num_hidden_groups=2, layerdrop=0.5)
    calls = []
    for layer in model.encoder.layers:
        layer.register_forward_hook(lambda module, args, output: calls.append(module))
    with torch.no_grad():
        model(padded_batch()[0])
        assert len(calls) == 6  # eval: every application runs
        model.train()
        counts = []
        for seed in range(8):
            calls.clear()
            torch.manual_seed(seed)
            model(padded_batch()[0])
            counts.append(len(calls))
    assert min(counts) < 6 and max(counts) > 0  # each application dropped with probability 0.5


def test_small_preset_file_size(tmp_path):
    AlHubertModel(AlHubertConfig.from_preset("small")).save_pretrained(tmp_path)
    size = (tmp_path / "model.safetensors").stat().st_size
    assert 90e6 < size <= 95e6


def test_eager_and_sdpa_agree():
    batch, mask = padded_batch()
    outputs = {}
    for implementation in ("eager", "sdpa"):
        torch.manual_seed(0)
        config = AlHubertConfig(**tiny_config_kwargs())
        config._attn_implementation = implementation
        model = AlHubertModel(config).eval()
        assert model.config._attn_implementation == implementation
        with torch.no_grad():
            outputs[implementation] = model(batch, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(outputs["eager"], outputs["sdpa"], atol=1e-5, rtol=1e-5)


def test_output_attentions_one_per_application():
    config = AlHubertConfig(**tiny_config_kwargs())
    config._attn_implementation = "eager"
    model = AlHubertModel(config).eval()
    batch, mask = padded_batch()
    outputs = model(batch, attention_mask=mask, output_attentions=True)
    assert len(outputs.attentions) == config.num_hidden_layers
    frames = outputs.last_hidden_state.shape[1]
    assert outputs.attentions[0].shape == (2, config.num_attention_heads, frames, frames)
    # padded key frames of the shorter utterance receive no attention
    real = model._get_feature_vector_attention_mask(frames, mask)[1]
    assert outputs.attentions[0][1][..., ~real].abs().max() == 0


def test_padding_does_not_change_real_frames():
    # only with per-frame LayerNorm in the conv stack: GroupNorm ("group") normalises over the padded length too
    model = build(feat_extract_norm="layer")
    batch, mask = padded_batch()
    with torch.no_grad():
        padded = model(batch, attention_mask=mask).last_hidden_state[1]
        alone = model(batch[1:, :2500]).last_hidden_state[0]
    torch.testing.assert_close(padded[: alone.shape[0]], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pre_ln", [False, True])
def test_elastic_depth_equals_hidden_state_of_full_run(pre_ln):
    model = build(do_stable_layer_norm=pre_ln)
    batch, mask = padded_batch()
    with torch.no_grad():
        full = model(batch, attention_mask=mask, output_hidden_states=True)
        for depth in (1, 3, 5):
            partial = model(batch, attention_mask=mask, depth=depth, output_hidden_states=True)
            torch.testing.assert_close(partial.last_hidden_state, full.hidden_states[depth], atol=0, rtol=0)
            assert len(partial.hidden_states) == depth + 1
        whole = model(batch, attention_mask=mask, depth=6).last_hidden_state
    torch.testing.assert_close(whole, full.last_hidden_state, atol=0, rtol=0)


# Out-of-range depth, malformed input values and masks: rows of tests/test_bad_input_model.py.


def test_gradient_checkpointing_gives_the_same_gradients():
    batch, mask = padded_batch()
    gradients, calls = [], {}
    for checkpointing in (False, True):
        model = build()
        model.train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.is_activation_checkpointing
        calls[checkpointing] = []
        # a hook inside the layer (Transformers checkpoints `forward`, so the layer's own hooks run once)
        for layer in model.encoder.layers:
            layer.feed_forward.register_forward_hook(lambda *args, log=calls[checkpointing]: log.append(1))
        model(batch, attention_mask=mask).last_hidden_state.pow(2).mean().backward()
        gradients.append(model.encoder.layers[0].feed_forward.intermediate_dense.weight.grad.clone())
    torch.testing.assert_close(gradients[0], gradients[1])
    # checkpointing really recomputes: every layer application runs again during backward
    assert len(calls[False]) == model.config.num_hidden_layers
    assert len(calls[True]) == 2 * model.config.num_hidden_layers


def test_spec_augment_uses_the_mask_embedding_in_training():
    model = build(mask_time_prob=0.5, mask_time_length=2, mask_feature_prob=0.3, mask_feature_length=2)
    batch, mask = padded_batch()
    model.train()
    model(batch, attention_mask=mask).last_hidden_state.sum().backward()
    assert model.masked_spec_embed.grad is not None and model.masked_spec_embed.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        first = model(batch, attention_mask=mask).last_hidden_state
        second = model(batch, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(first, second)  # no masking in eval mode


def test_freeze_feature_encoder():
    torch.manual_seed(0)
    model = AlHubertForCTC(AlHubertConfig(**tiny_config_kwargs()))
    model.freeze_feature_encoder()
    assert not any(p.requires_grad for p in model.alhubert.feature_extractor.parameters())
    assert all(p.requires_grad for p in model.alhubert.encoder.parameters())


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ctc_loss(reduction):
    torch.manual_seed(0)
    config = AlHubertConfig(
        **tiny_config_kwargs(ctc_loss_reduction=reduction, ctc_zero_infinity=True, pad_token_id=0, mask_time_prob=0.0)
    )
    model = AlHubertForCTC(config)
    batch, mask = padded_batch()
    labels = torch.tensor([[3, 4, 5, 6], [7, 8, -100, -100]])
    outputs = model(batch, attention_mask=mask, labels=labels)
    assert outputs.logits.shape[-1] == config.vocab_size
    assert torch.isfinite(outputs.loss) and outputs.loss > 0
    outputs.loss.backward()
    assert model.lm_head.weight.grad.abs().sum() > 0
    # an impossible alignment (more labels than frames) gives zero, not infinity, with ctc_zero_infinity
    impossible = model(batch[:1, :1000], labels=torch.arange(1, 11).view(1, 10)).loss
    assert impossible.item() == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_sequence_classification(weighted):
    torch.manual_seed(0)
    config = AlHubertConfig(
        **tiny_config_kwargs(use_weighted_layer_sum=weighted, classifier_proj_size=8, num_labels=3)
    )
    model = AlHubertForSequenceClassification(config).eval()
    batch, mask = padded_batch()
    labels = torch.tensor([0, 2])
    outputs = model(batch, attention_mask=mask, labels=labels)
    assert outputs.logits.shape == (2, 3)
    assert model.projector.out_features == 8
    # the logits are the classifier over the mean of the real frames of the last (or weighted) hidden states
    with torch.no_grad():
        hidden_states = model.alhubert(batch, attention_mask=mask, output_hidden_states=True).hidden_states
        if weighted:
            weights = torch.softmax(model.layer_weights, dim=0)
            states = (torch.stack(hidden_states) * weights[:, None, None, None]).sum(0)
        else:
            states = hidden_states[-1]
        frames = model.alhubert._get_feature_vector_attention_mask(states.shape[1], mask)
        projected = model.projector(states)
        pooled = (projected * frames[..., None]).sum(1) / frames.sum(1, keepdim=True)
        expected = model.classifier(pooled)
    torch.testing.assert_close(outputs.logits, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(outputs.loss, torch.nn.functional.cross_entropy(expected, labels), atol=1e-5, rtol=0)
    outputs.loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0 and model.projector.weight.grad.abs().sum() > 0
    if weighted:
        assert model.layer_weights.shape == (config.num_hidden_layers + 1,)
        assert model.layer_weights.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(dtype):
    model = build()
    hubert = use_fast_cpu_path(unrolled_hubert(model))  # in bf16 both run the CPU fast path's matmul convolutions
    batch, mask = padded_batch()
    with torch.no_grad():
        reference = model(batch, attention_mask=mask).last_hidden_state
        real = model._get_feature_vector_attention_mask(reference.shape[1], mask)
        half = model.to(dtype)(batch.to(dtype), attention_mask=mask).last_hidden_state
        hubert_half = hubert.to(dtype)(batch.to(dtype), attention_mask=mask).last_hidden_state
    assert half.dtype == dtype
    torch.testing.assert_close(half, hubert_half, atol=0, rtol=0)  # the same arithmetic as HuBERT's layers
    similarity = torch.nn.functional.cosine_similarity(half.float(), reference, dim=-1)[real]
    assert similarity.mean() > 0.95, similarity.mean()


def test_heads_load_from_a_base_checkpoint(tmp_path):
    model = build()
    model.save_pretrained(tmp_path)
    ctc = AlHubertForCTC.from_pretrained(tmp_path)
    torch.testing.assert_close(
        ctc.alhubert.encoder.layers[1].feed_forward.output_dense.weight,
        model.encoder.layers[1].feed_forward.output_dense.weight,
    )
