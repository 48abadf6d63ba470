"""Long-audio feature extraction: window planning, chunked vs one-pass features, batching of different lengths."""

import numpy as np
import pytest
import torch
from helpers import tiny_config_kwargs

from alhubert import AlHubertConfig, AlHubertModel, default_feature_extractor
from alhubert.inference.long_audio import LongAudioFeatureExtractor, extract_long_features, plan_windows


@pytest.mark.parametrize("total, chunk, context", [(10, 20, 2), (100, 20, 3), (101, 20, 4), (57, 11, 5)])
def test_windows_cover_every_frame_once_with_context(total, chunk, context):
    windows = plan_windows(total, chunk, context)
    assert windows[0].keep_start == 0 and windows[-1].keep_end == total
    for previous, window in zip(windows, windows[1:]):
        assert previous.keep_end == window.keep_start
    for window in windows:
        assert window.end - window.start <= chunk and window.start <= window.keep_start < window.keep_end <= window.end
        assert window.keep_start - window.start >= context or window.start == 0
        assert window.end - window.keep_end >= context or window.end == total


def test_plan_rejects_a_stride_that_eats_the_chunk():
    with pytest.raises(ValueError, match="longer than twice the stride"):
        plan_windows(100, 10, 5)


@pytest.mark.parametrize("feat_extract_norm", ["group", "layer"])
def test_chunked_features_match_one_pass(feat_extract_norm):
    config = AlHubertConfig(**tiny_config_kwargs(feat_extract_norm=feat_extract_norm))
    torch.manual_seed(0)
    model = AlHubertModel(config).eval()
    feature_extractor = default_feature_extractor(config)
    waveform = np.random.default_rng(1).standard_normal(16000 * 8 + 123).astype(np.float32)
    with torch.no_grad():
        full = model(torch.from_numpy(waveform)[None], output_hidden_states=True).hidden_states[5][0].numpy()
    one_window = extract_long_features(
        model, feature_extractor, waveform, layer=5, chunk_length_s=10, stride_length_s=1
    )
    np.testing.assert_array_equal(one_window, full)  # no longer than a chunk: a single pass

    chunked = extract_long_features(
        model, feature_extractor, waveform, layer=5, chunk_length_s=3, stride_length_s=1, batch_size=2
    )
    assert chunked.shape == full.shape
    relative_error = np.linalg.norm(chunked - full) / np.linalg.norm(full)
    assert 0 < relative_error < 0.1  # random weights: a loose bound; benchmarks/long_audio.py measures it


@pytest.mark.parametrize("feat_extract_norm", ["group", "layer"])
def test_batching_files_of_different_lengths_changes_nothing(feat_extract_norm):
    config = AlHubertConfig(**tiny_config_kwargs(feat_extract_norm=feat_extract_norm))
    torch.manual_seed(0)
    model = AlHubertModel(config).eval()
    rng = np.random.default_rng(2)
    waveforms = [rng.standard_normal(length).astype(np.float32) for length in (16000, 9000, 23000, 16000)]
    extractor = LongAudioFeatureExtractor(model, default_feature_extractor(config), layer=2, batch_size=4)
    results = dict(extractor(waveforms))
    assert sorted(results) == [0, 1, 2, 3]
    for index, waveform in enumerate(waveforms):
        with torch.no_grad():
            expected = model(torch.from_numpy(waveform)[None], output_hidden_states=True).hidden_states[2][0].numpy()
        np.testing.assert_allclose(results[index], expected, atol=1e-5, rtol=0)


def test_normalising_feature_extractor_normalises_the_whole_recording():
    config = AlHubertConfig(**tiny_config_kwargs(do_normalize=True))
    torch.manual_seed(0)
    model = AlHubertModel(config).eval()
    feature_extractor = default_feature_extractor(config)
    waveform = (3.0 + 2.0 * np.random.default_rng(3).standard_normal(20000)).astype(np.float32)
    with torch.no_grad():
        expected = model(**feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")).last_hidden_state[0]
    np.testing.assert_allclose(extract_long_features(model, feature_extractor, waveform), expected.numpy(), atol=1e-5)
