"""The float32 CPU fast paths (matmul feature encoder, channels-last positional convolution) give HuBERT's outputs.

The bfloat16 fast path: tests/test_bf16_native.py.
"""

import pytest
import torch
from helpers import padded_batch, tiny_config_kwargs
from helpers import perturbed_tiny_model as build
from transformers import HubertConfig, HubertModel
from transformers.models.hubert.modeling_hubert import HubertFeatureEncoder

from alhubert import AlHubertConfig, AlHubertForCTC, AlHubertModel
from alhubert.models import fast_cpu_path
from alhubert.models.fast_cpu_path import use_fast_cpu_path, uses_fast_cpu_path


TOLERANCE = 1e-4  # float32 max difference allowed against the plain (HuBERT) arithmetic

VARIANTS = {
    "post-ln-groupnorm": {},
    "pre-ln-layernorm-convbias": {"do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True},
    "groupnorm-convbias-odd-pos-kernel": {"conv_bias": True, "num_conv_pos_embeddings": 15},
    "block-sharing": {"layer_sharing": "block", "num_hidden_layers": 6, "num_hidden_groups": 3},
}


def fast_and_plain(model, *args, **kwargs):
    with torch.no_grad():
        model.set_fast_cpu_path(True)
        fast = model(*args, output_hidden_states=True, **kwargs)
        model.set_fast_cpu_path(False)
        plain = model(*args, output_hidden_states=True, **kwargs)
    model.set_fast_cpu_path(True)
    return fast, plain


def count_fast_encoder_calls(monkeypatch):
    calls = []
    original = fast_cpu_path.feature_encoder_frames

    def counting(encoder, input_values):
        calls.append(tuple(input_values.shape))
        return original(encoder, input_values)

    monkeypatch.setattr(fast_cpu_path, "feature_encoder_frames", counting)
    return calls


@pytest.mark.parametrize("overrides", list(VARIANTS.values()), ids=list(VARIANTS))
def test_fast_path_matches_plain_model_on_padded_batch(overrides, monkeypatch):
    calls = count_fast_encoder_calls(monkeypatch)
    model = build(**overrides)
    batch, mask = padded_batch()
    fast, plain = fast_and_plain(model, batch, attention_mask=mask)
    assert calls == [tuple(batch.shape)]  # the fast path ran once, the plain run did not use it
    assert fast.last_hidden_state.shape == plain.last_hidden_state.shape
    assert len(fast.hidden_states) == len(plain.hidden_states) == model.config.num_hidden_layers + 1
    for ours, reference in zip(fast.hidden_states, plain.hidden_states):
        torch.testing.assert_close(ours, reference, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(fast.last_hidden_state, plain.last_hidden_state, atol=TOLERANCE, rtol=0)


def expected_frames(config, samples):
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        samples = (samples - kernel) // stride + 1
    return samples


@pytest.mark.parametrize("overrides", [{}, {"feat_extract_norm": "layer", "conv_bias": True}], ids=["group", "layer"])
@pytest.mark.parametrize("lengths", [(400,), (401, 719), (16000, 7777, 12345)], ids=["400", "odd", "three"])
def test_feature_encoder_matches_hubert_feature_encoder(overrides, lengths):
    config = AlHubertConfig(**tiny_config_kwargs(**overrides))
    fast = build(**overrides).feature_extractor
    reference = HubertFeatureEncoder(config).eval()
    reference.load_state_dict(fast.state_dict())
    batch, _ = padded_batch(lengths)
    with torch.no_grad():
        ours, theirs = fast(batch), reference(batch)
    assert ours.shape == theirs.shape == (len(lengths), config.conv_dim[-1], expected_frames(config, max(lengths)))
    scale = theirs.abs().max()
    torch.testing.assert_close(ours / scale, theirs / scale, atol=1e-5, rtol=0)


def test_silent_audio_keeps_groupnorm_epsilon_behaviour():
    model = build()
    silence = torch.zeros(2, 3200)
    fast, plain = fast_and_plain(model, silence)
    torch.testing.assert_close(fast.last_hidden_state, plain.last_hidden_state, atol=TOLERANCE, rtol=0)


def test_gradients_through_fast_path_match_plain():
    model = build(mask_time_prob=0.0)
    model.train()  # no dropout, layerdrop or time masking in this configuration: training is deterministic
    batch, mask = padded_batch()
    gradients = {}
    for enabled in (True, False):
        model.zero_grad()
        model.set_fast_cpu_path(enabled)
        model(batch, attention_mask=mask).last_hidden_state.square().mean().backward()
        gradients[enabled] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    # the first convolution's bias cancels in GroupNorm: exactly zero gradient (None on the fast path)
    assert set(gradients[False]) - set(gradients[True]) <= {"feature_extractor.conv_layers.0.conv.bias"}
    for name, fast in gradients[True].items():
        plain = gradients[False][name]
        torch.testing.assert_close(fast, plain, atol=1e-4 * plain.abs().max().item() + 1e-8, rtol=0, msg=name)


def test_plain_path_is_hubert_arithmetic_for_other_dtypes_and_when_disabled():
    """Under autocast and in float64 HuBERT's own forward runs (native bf16: tests/test_bf16_native.py)."""
    model = build()
    batch, mask = padded_batch()
    with torch.no_grad():
        model.set_fast_cpu_path(False)
        plain = model(batch, attention_mask=mask).last_hidden_state
        model.set_fast_cpu_path(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_fast = model(batch, attention_mask=mask).last_hidden_state
        model.set_fast_cpu_path(False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_plain = model(batch, attention_mask=mask).last_hidden_state
        model.set_fast_cpu_path(True)
        float64 = model.double()(batch.double(), attention_mask=mask).last_hidden_state
        model.set_fast_cpu_path(False)
        float64_plain = model(batch.double(), attention_mask=mask).last_hidden_state
    torch.testing.assert_close(autocast_fast, autocast_plain, atol=0, rtol=0)
    torch.testing.assert_close(float64, float64_plain, atol=0, rtol=0)
    assert not torch.equal(autocast_fast.float(), plain)  # autocast really ran in lower precision


def test_heads_use_the_fast_path_and_can_turn_it_off(monkeypatch):
    calls = count_fast_encoder_calls(monkeypatch)
    torch.manual_seed(0)
    model = AlHubertForCTC(AlHubertConfig(**tiny_config_kwargs())).eval()
    batch, mask = padded_batch()
    with torch.no_grad():
        fast = model(batch, attention_mask=mask).logits
        model.alhubert.set_fast_cpu_path(False)
        plain = model(batch, attention_mask=mask).logits
    assert len(calls) == 1
    torch.testing.assert_close(fast, plain, atol=TOLERANCE, rtol=0)


def test_released_small_shape_matches_plain_on_one_second():
    # tiny configurations have 16 channels: also check the real widths (512 conv channels, 768 hidden, 16 pos groups)
    torch.manual_seed(0)
    model = AlHubertModel(AlHubertConfig.from_preset("small", num_hidden_layers=2, num_hidden_groups=2)).eval()
    audio = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1))
    fast, plain = fast_and_plain(model, audio)
    torch.testing.assert_close(fast.last_hidden_state, plain.last_hidden_state, atol=TOLERANCE, rtol=0)


def test_state_dict_format_is_unchanged():
    config = AlHubertConfig(**tiny_config_kwargs(num_hidden_layers=2, num_hidden_groups=2))
    ours = set(AlHubertModel(config).state_dict())
    hubert_kwargs = tiny_config_kwargs(num_hidden_layers=2)
    del hubert_kwargs["num_hidden_groups"]
    theirs = set(HubertModel(HubertConfig(**hubert_kwargs)).state_dict())
    assert ours == theirs


@pytest.mark.parametrize("pre_ln", [False, True], ids=["post-ln", "pre-ln"])
def test_the_switch_speeds_up_a_plain_hubert_model(pre_ln, monkeypatch):
    """`use_fast_cpu_path` attaches to transformers' own HubertModel (a distillation teacher) and detaches again."""
    overrides = {"do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True} if pre_ln else {}
    torch.manual_seed(0)
    teacher = HubertModel(HubertConfig(**tiny_config_kwargs(**overrides))).eval()
    batch, mask = padded_batch()
    with torch.no_grad():
        plain = teacher(batch, attention_mask=mask, output_hidden_states=True)
        calls = count_fast_encoder_calls(monkeypatch)
        assert use_fast_cpu_path(teacher) is teacher
        assert uses_fast_cpu_path(teacher.feature_extractor) and uses_fast_cpu_path(teacher.encoder.pos_conv_embed)
        fast = teacher(batch, attention_mask=mask, output_hidden_states=True)
        assert calls == [tuple(batch.shape)]
        use_fast_cpu_path(teacher, enabled=False)
        assert not uses_fast_cpu_path(teacher.feature_extractor)
        again = teacher(batch, attention_mask=mask, output_hidden_states=True)
    assert len(calls) == 1  # detached: HuBERT's forward ran
    for ours, reference in zip(fast.hidden_states, plain.hidden_states):
        torch.testing.assert_close(ours, reference, atol=TOLERANCE, rtol=0)
    for ours, reference in zip(again.hidden_states, plain.hidden_states):
        torch.testing.assert_close(ours, reference, atol=0, rtol=0)


def test_the_attached_path_survives_deepcopy():
    import copy

    model = build()
    batch, _ = padded_batch()
    for clone in (copy.deepcopy(model),):  # (HuBERT's weight-normed positional conv cannot be pickled at all)
        assert uses_fast_cpu_path(clone.feature_extractor)
        assert (
            clone.feature_extractor.forward.args[0] is clone.feature_extractor
        )  # bound to the copy, not the original
        with torch.no_grad():
            torch.testing.assert_close(clone(batch).last_hidden_state, model(batch).last_hidden_state, atol=0, rtol=0)
