import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_config_kwargs
from original_checkpoints import FIXTURES, fixture_inputs, max_difference_on_frames, random_original_checkpoint

from alhubert import AlHubertConfig
from alhubert.original.conversion import convert_original_checkpoint
from alhubert.original.upstream import UpstreamExpert


def fixture_waveforms(name):
    """The fixture's batch as the list of unpadded 1-D waveforms that S3PRL passes to an upstream."""
    reference, _ = fixture_inputs(name)
    wavs = [row[:length] for row, length in zip(reference["wav_padded"], reference["wav_lengths"].tolist())]
    return wavs, reference


def check_against_fixture(expert, name):
    wavs, reference = fixture_waveforms(name)
    with torch.no_grad():
        states = expert(wavs)
    assert set(states) == {"last_hidden_state", "hidden_states", "pad_mask", "paper"}
    assert isinstance(states["hidden_states"], list)
    assert len(states["hidden_states"]) == expert.model.config.num_hidden_layers
    assert states["last_hidden_state"].shape == reference["last_hidden_state"].shape
    assert torch.equal(states["pad_mask"], reference["frame_mask"].long())
    assert states["paper"] is states["last_hidden_state"]
    assert max_difference_on_frames(states["last_hidden_state"], states["hidden_states"], reference) <= 1e-5
    assert expert.get_downsample_rates("hidden_states") == 320
    assert not expert.training


@pytest.mark.parametrize("name", ["tiny_postln", "tiny_preln"])
def test_upstream_from_an_original_checkpoint(name):
    check_against_fixture(UpstreamExpert(str(FIXTURES / f"{name}.ckpt")), name)


def test_upstream_from_a_converted_directory(tmp_path):
    model_dir = convert_original_checkpoint(FIXTURES / "tiny_preln.ckpt", tmp_path / "converted")
    expert = UpstreamExpert(str(model_dir))
    check_against_fixture(expert, "tiny_preln")
    # pre-LN: the last application's raw output differs from last_hidden_state (after the final LayerNorm)
    wavs, _ = fixture_waveforms("tiny_preln")
    with torch.no_grad():
        states = expert(wavs)
    assert not torch.allclose(states["hidden_states"][-1], states["last_hidden_state"])


@pytest.mark.parametrize("source", ["ckpt", "converted"])
def test_upstream_in_bfloat16_matches_the_original_to_bf16_accuracy(source, tmp_path):
    path = FIXTURES / "tiny_postln.ckpt"
    if source == "converted":
        path = convert_original_checkpoint(path, tmp_path / "converted")
    expert = UpstreamExpert(str(path), dtype=torch.bfloat16)
    assert expert.model.dtype == torch.bfloat16 and not expert.training
    wavs, reference = fixture_waveforms("tiny_postln")
    with torch.no_grad():
        states = expert(wavs)  # float32 waveforms, cast once at the model's input
    frames = reference["frame_mask"].bool()
    outputs = [states["last_hidden_state"], *states["hidden_states"]]
    expected = [reference["last_hidden_state"], *(reference[f"hidden_states.{i}"] for i in range(len(outputs) - 1))]
    bf16_unit_roundoff = 2.0**-8
    for output, target in zip(outputs, expected):
        assert output.dtype == torch.bfloat16
        output, target = output.float()[frames], target[frames]
        relative_error = ((output - target).norm() / target.norm()).item()
        assert 0 < relative_error <= 8 * bf16_unit_roundoff  # bound of tests/test_bf16_native.py
    assert torch.equal(states["pad_mask"], reference["frame_mask"].long())


def test_upstream_normalizes_like_the_original_and_reports_its_stride(tmp_path):
    config = AlHubertConfig(
        **tiny_config_kwargs(
            do_normalize=True,
            conv_dim=(16,) * 4,
            conv_kernel=(10, 8, 4, 4),
            conv_stride=(5, 4, 2, 2),
            mask_time_prob=0.65,
            feat_extract_norm="layer",
            conv_bias=True,  # GroupNorm would undo the normalisation
        )
    )
    checkpoint, source = random_original_checkpoint(config, "[(16,10,5), (16,8,4)] + [(16,4,2)] * 2")
    path = tmp_path / "normalized.ckpt"
    torch.save(checkpoint, path)
    expert = UpstreamExpert(str(path))
    assert expert.get_downsample_rates("last_hidden_state") == 80
    wavs = [3.0 * torch.randn(2400) + 1.0, torch.randn(1600)]
    with torch.no_grad():
        states = expert(wavs)
        # the longest waveform has no padding, so it can be compared with a run on its own (GroupNorm sees padding)
        alone = source(F.layer_norm(wavs[0], wavs[0].shape)[None], output_hidden_states=True)
        unnormalized = source(wavs[0][None]).last_hidden_state
    frames = alone.last_hidden_state.shape[1]
    assert states["pad_mask"].shape == (2, frames)
    short_frames = 1600
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        short_frames = (short_frames - kernel) // stride + 1
    assert states["pad_mask"].sum(dim=1).tolist() == [frames, short_frames]
    torch.testing.assert_close(states["last_hidden_state"][0], alone.last_hidden_state[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(states["hidden_states"][0][0], alone.hidden_states[1][0], atol=1e-5, rtol=0)
    assert not torch.allclose(states["last_hidden_state"][0], unnormalized[0], atol=1e-3)


def test_upstream_refuses_bad_input(tmp_path):
    expert = UpstreamExpert(str(FIXTURES / "tiny_postln.ckpt"))
    with pytest.raises(ValueError, match="list"):
        expert(torch.randn(2, 16000))
    with pytest.raises(ValueError, match=r"wavs\[1\] must be a 1-D float tensor"):
        expert([torch.randn(16000), torch.randn(1, 16000)])
    with pytest.raises(ValueError, match="wavs"):
        expert([torch.zeros(16000, dtype=torch.long)])
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        UpstreamExpert(str(tmp_path / "missing.ckpt"))
