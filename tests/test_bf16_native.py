"""The native bfloat16 path: weights in bf16, the convolutions as bf16 matmuls, no torch convolution kernel, no casts.

Every check compares against float64 arithmetic on the same bf16-rounded weights and inputs, with tolerances derived
from bf16's unit roundoff U = 2**-8 (half of `torch.finfo(torch.bfloat16).eps`), never tuned on one CPU's kernels: a
wrong kernel (relative error of order 1, as torch's bf16 grouped conv1d gives for some shapes on Intel AMX) fails.
"""

import copy

import pytest
import torch
from helpers import padded_batch, tiny_config_kwargs
from helpers import perturbed_tiny_model as build
from torch.nn import functional as F
from torch.profiler import ProfilerActivity, profile
from transformers import HubertConfig, HubertModel
from transformers.models.hubert.modeling_hubert import HubertFeatureEncoder, HubertPositionalConvEmbedding

from alhubert import AlHubertModel
from alhubert.models import fast_cpu_path
from alhubert.models.fast_cpu_path import grouped_conv_on_frames, use_fast_cpu_path, uses_fast_cpu_path


U = torch.finfo(torch.bfloat16).eps / 2  # unit roundoff: one rounding to bf16 is off by at most U, relatively
# A dot product accumulated in float32 and rounded once (plus once more when the bias is added): 2 U.
CONV_TOLERANCE = 2 * U
# The whole model: a few roundings per layer (matmul outputs, norm, GELU, residual add), which do not compound
# because every hidden state leaves a LayerNorm (post-LN) or is dominated by a residual stream (pre-LN); 8 U of
# relative error is a cosine of at least 1 - (8 U)**2 / 2 = 0.99902, the accuracy target of the bf16 path.
MODEL_TOLERANCE = 8 * U

GROUPED_SHAPES = {
    # (channels, groups, kernel, frames): the shape on which torch's bf16 conv1d is wrong on an AMX CPU (relative
    # error 1.09), an odd kernel, and HuBERT Base's positional convolution
    "32ch-4groups-k16": (32, 4, 16, 50),
    "32ch-4groups-k15": (32, 4, 15, 50),
    "hubert-base": (768, 16, 128, 12),
}


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    return ((output.double() - reference).norm() / reference.norm()).item()


def bf16_and_float64(module: torch.nn.Module):
    """`module` in bf16 (fast path attached) and a float64 copy of the bf16-rounded weights."""
    module = module.to(torch.bfloat16).eval()
    use_fast_cpu_path(module)
    reference = copy.deepcopy(module)
    use_fast_cpu_path(reference, enabled=False)
    return module, reference.double()


@pytest.mark.parametrize("shape", list(GROUPED_SHAPES.values()), ids=list(GROUPED_SHAPES))
def test_grouped_conv_matches_float64(shape):
    channels, groups, kernel, frames = shape
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, frames, channels, generator=generator).to(torch.bfloat16)
    weight = (torch.randn(channels, channels // groups, kernel, generator=generator) / kernel**0.5).to(torch.bfloat16)
    bias = torch.randn(channels, generator=generator).to(torch.bfloat16)
    expected = F.conv1d(
        hidden.double().transpose(1, 2), weight.double(), bias.double(), padding=kernel // 2, groups=groups
    )[:, :, :frames].transpose(1, 2)
    for block_elements in (1 << 24, 1):  # one block, and one output frame per block
        output = grouped_conv_on_frames(hidden, weight, bias, kernel // 2, groups, block_elements=block_elements)
        assert output.dtype == torch.bfloat16 and output.shape == expected.shape
        assert relative_error(output, expected) <= CONV_TOLERANCE


@pytest.mark.parametrize("shape", list(GROUPED_SHAPES.values()), ids=list(GROUPED_SHAPES))
def test_positional_conv_module_in_bf16_matches_float64(shape, monkeypatch):
    channels, groups, kernel, frames = shape
    torch.manual_seed(0)
    config = HubertConfig(hidden_size=channels, num_conv_pos_embeddings=kernel, num_conv_pos_embedding_groups=groups)
    module, reference = bf16_and_float64(HubertPositionalConvEmbedding(config))
    calls = []
    monkeypatch.setattr(
        fast_cpu_path, "grouped_conv_on_frames", lambda *a, **k: calls.append(1) or grouped_conv_on_frames(*a, **k)
    )
    hidden = torch.randn(2, frames, channels).to(torch.bfloat16)
    with torch.no_grad():
        output = module(hidden)
        expected = reference(hidden.double())
    assert calls and output.dtype == torch.bfloat16
    # the convolution (2 U) then GELU, whose derivative is at most 1.13, rounded once more
    assert relative_error(output, expected) <= 1.13 * CONV_TOLERANCE + U


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_feature_encoder_in_bf16_matches_float64(norm):
    torch.manual_seed(0)
    config = HubertConfig(**tiny_config_kwargs(feat_extract_norm=norm, conv_bias=norm == "layer"))
    encoder, reference = bf16_and_float64(HubertFeatureEncoder(config))
    audio = torch.randn(2, 8000).to(torch.bfloat16)
    with torch.no_grad():
        output = encoder(audio)
        expected = reference(audio.double())
    assert output.dtype == torch.bfloat16 and output.shape == expected.shape
    # per convolution layer at most 4 roundings (two partial products, the norm, GELU), adding up over the layers
    assert relative_error(output, expected) <= 4 * len(config.conv_dim) * U


@pytest.mark.parametrize(
    "overrides",
    [{}, {"do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True}],
    ids=["post-ln-groupnorm", "pre-ln-layernorm"],
)
def test_native_bf16_model_matches_float64_per_hidden_state(overrides):
    model = build(**overrides).to(torch.bfloat16)
    batch, mask = padded_batch()
    with torch.no_grad():
        hidden_states = model(batch.to(torch.bfloat16), attention_mask=mask, output_hidden_states=True).hidden_states
        model.set_fast_cpu_path(False)
        expected = model.double()(
            batch.to(torch.bfloat16).double(), attention_mask=mask, output_hidden_states=True
        ).hidden_states
    frames = model._get_feature_vector_attention_mask(hidden_states[0].shape[1], mask)
    assert len(hidden_states) == model.config.num_hidden_layers + 1
    for index, (output, reference) in enumerate(zip(hidden_states, expected)):
        assert output.dtype == torch.bfloat16
        output, reference = output[frames].double(), reference[frames]
        cosine = F.cosine_similarity(output, reference, dim=-1).mean().item()
        assert relative_error(output, reference) <= MODEL_TOLERANCE, index
        assert cosine >= 1 - MODEL_TOLERANCE**2 / 2, index


def test_native_bf16_forward_runs_no_convolution_kernel_and_no_per_operator_casts():
    model = build().to(torch.bfloat16)
    batch, mask = padded_batch()
    batch = batch.to(torch.bfloat16)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as profiler:
        model(batch, attention_mask=mask)
    counts = {event.key: event.count for event in profiler.key_averages()}
    assert not [name for name in counts if "conv" in name], counts  # no torch convolution kernel at all
    # the only conversions: the GroupNorm statistics in float64 (audio windows and weights in, scale and shift out),
    # a fixed number whatever the depth (autocast casts around every operator of every layer)
    casts = counts.get("aten::_to_copy", 0)
    deeper = build(num_hidden_layers=12).to(torch.bfloat16)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as profiler:
        deeper(batch, attention_mask=mask)
    # (the count itself varies with the torch release and the CPU's oneDNN kernels: 12 on an Intel AMX host with torch
    # 2.11, fewer on AMD with 2.13; what matters is that depth does not change it)
    assert {event.key: event.count for event in profiler.key_averages()}.get("aten::_to_copy", 0) == casts


def test_from_pretrained_in_bf16_uses_the_fast_path(tmp_path, monkeypatch):
    build().save_pretrained(tmp_path)
    model = AlHubertModel.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert model.dtype == torch.bfloat16
    assert uses_fast_cpu_path(model.feature_extractor) and uses_fast_cpu_path(model.encoder.pos_conv_embed)
    calls = []
    monkeypatch.setattr(
        fast_cpu_path, "grouped_conv_on_frames", lambda *a, **k: calls.append(1) or grouped_conv_on_frames(*a, **k)
    )
    batch, mask = padded_batch()
    with torch.no_grad():
        loaded = model(batch, attention_mask=mask).last_hidden_state  # float32 audio: cast once at the input
        converted = build().to(torch.bfloat16)(batch.to(torch.bfloat16), attention_mask=mask).last_hidden_state
    assert calls and loaded.dtype == torch.bfloat16
    torch.testing.assert_close(loaded, converted, atol=0, rtol=0)


def test_plain_hubert_in_bf16_gets_the_path_and_keeps_its_dtype_check():
    torch.manual_seed(0)
    teacher = HubertModel(HubertConfig(**tiny_config_kwargs(num_hidden_layers=2))).eval().to(torch.bfloat16)
    use_fast_cpu_path(teacher)
    batch, _ = padded_batch()
    with torch.no_grad():
        output = teacher(batch.to(torch.bfloat16)).last_hidden_state
        # the reference: the same weights in float64 through HuBERT's own code (not HuBERT's bf16 kernels, which are
        # wrong on some CPUs: relative error 0.39 for this model on an Intel AMX host, the grouped conv1d bug)
        reference = copy.deepcopy(teacher).double()
        use_fast_cpu_path(reference, enabled=False)
        expected = reference(batch.double()).last_hidden_state
    assert output.dtype == torch.bfloat16
    assert relative_error(output, expected) <= MODEL_TOLERANCE
    use_fast_cpu_path(teacher)
    with pytest.raises(RuntimeError):  # float32 audio into bf16 weights: HuBERT's own error, not a silent cast
        teacher(batch)
