"""Hostile input to the model, its pipeline, UpstreamExpert and the data collator (issue 13): one row per case.

Each row either expects an exception (type and patterns its message must contain: the problem and the fix) or runs
a check of what must happen instead (finite outputs, exact frame counts, a cast). Command-line rows are in
tests/test_bad_input_commands.py.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from transformers import pipeline

from alhubert import (
    AlHubertConfig,
    AlHubertForCTC,
    AlHubertForSequenceClassification,
    AlHubertModel,
    default_feature_extractor,
)
from alhubert.inference.long_audio import LongAudioFeatureExtractor
from alhubert.original.upstream import UpstreamExpert
from alhubert.training.data import AudioCollator


# the issue's tiny configuration
ISSUE_CONFIG = tiny_config_kwargs(num_hidden_layers=4, num_hidden_groups=2, num_attention_heads=2)


@dataclass
class Raises:
    """The row must raise `error` with every regex of `patterns` in its message (the problem, then the fix)."""

    error: type
    patterns: tuple


@dataclass
class Row:
    id: str
    run: Callable  # run(context) -> value given to `check`, or raises
    expect: Raises | Callable  # Raises(...) or check(value, context)


class Context:
    """Models built once per module (tiny: milliseconds)."""

    def __init__(self, tmp_path_factory):
        torch.manual_seed(0)
        self.config = AlHubertConfig(**ISSUE_CONFIG)
        self.model = AlHubertModel(self.config).eval()
        self.directory = tmp_path_factory.mktemp("bad-input-model")
        self.model.save_pretrained(self.directory)
        self._pipeline = None

    @property
    def extractor(self):
        if self._pipeline is None:
            self._pipeline = pipeline("audio-feature-extraction", model=str(self.directory))
        return self._pipeline


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return Context(tmp_path_factory)


def short_item_batch():
    """Rows of 16000, 100 and 0 real samples (the issue's case 1), right-padded with zeros."""
    batch = torch.randn(3, 16000)
    mask = torch.zeros(3, 16000, dtype=torch.long)
    mask[0], mask[1, :100] = 1, 1
    return batch * mask, mask


def forward(context, batch, mask=None, **kwargs):
    with torch.no_grad():
        return context.model(batch, attention_mask=mask, **kwargs)


def masked(mask_edit):
    """Forward a 2 x 1000 batch whose mask is `mask_edit(ones mask)`."""

    def run(context):
        mask = torch.ones(2, 1000, dtype=torch.long)
        return forward(context, torch.randn(2, 1000), mask_edit(mask))

    return run


def layer_norm_model(head=AlHubertModel):
    """A model whose feature encoder is layer-normalised (padding-invariant), seeded."""
    torch.manual_seed(0)
    config = AlHubertConfig(**{**ISSUE_CONFIG, "feat_extract_norm": "layer"})
    return head(config).eval()


def superb_head(config):
    """The SUPERB model (frozen encoder, weighted layer sum, BiLSTM, CTC) of `config`, without dropout."""
    from alhubert import AlHubertSuperbConfig, AlHubertSuperbForCTC

    return AlHubertSuperbForCTC(AlHubertSuperbConfig(**config.to_dict(), superb_lstm_size=8, superb_dropout=0.0))


def run_left_padded(head):
    """The same 4000 samples alone, right-padded and left-padded by 2 frames (640 samples) of noise, with labels."""

    def run(context):
        model = layer_norm_model(head)
        audio, noise = torch.randn(1, 4000), torch.randn(1, 640)
        real, pad = torch.ones(1, 4000, dtype=torch.long), torch.zeros(1, 640, dtype=torch.long)
        labels = {"labels": torch.tensor([[1, 2, 3]])} if head is not AlHubertModel else {}
        with torch.no_grad():
            return (
                model(audio, **labels),
                model(torch.cat([noise, audio], 1), torch.cat([pad, real], 1), **labels),
                model(torch.cat([audio, noise], 1), torch.cat([real, pad], 1), **labels),
            )

    return run


def check_left_padded(value, context):
    """Left padding gives the unpadded result on the real frames (HuBERT masks the last frames instead)."""
    alone, left, right = value
    name = "logits" if hasattr(alone, "logits") else "last_hidden_state"
    frames = getattr(alone, name).shape[1]
    torch.testing.assert_close(getattr(left, name)[:, 2:], getattr(alone, name), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(getattr(right, name)[:, :frames], getattr(alone, name), atol=1e-5, rtol=1e-5)
    if name == "logits":
        torch.testing.assert_close(left.loss, alone.loss, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(right.loss, alone.loss, atol=1e-4, rtol=1e-5)


def run_gap(context):
    """A gap of 100 samples in the middle, filled with two different noises: real frames must not depend on it."""
    model = layer_norm_model()
    mask = torch.ones(1, 4000, dtype=torch.long)
    mask[0, 2000:2100] = 0
    audio = torch.randn(1, 4000)
    other = audio.clone()
    other[0, 2000:2100] = 100 * torch.randn(100)
    with torch.no_grad():
        first, second = model(audio, mask).last_hidden_state, model(other, mask).last_hidden_state
    return first, second, model._get_feature_vector_attention_mask(first.shape[1], mask)[0]


def check_gap(value, context):
    first, second, frames = value
    # frame t covers samples [320 t, 320 t + 400): only frame 6 touches 2000..2099
    assert frames.tolist() == [t != 6 for t in range(12)]
    torch.testing.assert_close(first[0, frames], second[0, frames], atol=1e-5, rtol=1e-5)


def all_finite(outputs):
    return all(torch.isfinite(state).all() for state in outputs.hidden_states)


def check_frame_counts(value, context):
    assert value.tolist() == [49, 0, 0]


def check_short_items_are_finite(value, context):
    outputs, frames = value
    assert all_finite(outputs), "a row with no real frame produced NaN/inf"
    assert frames.tolist() == [49, 0, 0]


def check_cast(dtype):
    def check(value, context):
        expected = forward(context, value[0].float()).last_hidden_state
        assert value[1].last_hidden_state.dtype == torch.float32
        torch.testing.assert_close(
            value[1].last_hidden_state, expected, atol=1e-3 if dtype == torch.float16 else 1e-6, rtol=0
        )

    return check


def run_cast(dtype):
    def run(context):
        batch = torch.randn(1, 4000).to(dtype)
        return batch, forward(context, batch)

    return run


def run_short_items_all_paths(context):
    batch, mask = short_item_batch()
    outputs = forward(context, batch, mask, output_hidden_states=True)
    frames = context.model._get_feature_vector_attention_mask(outputs.last_hidden_state.shape[1], mask).sum(1)
    return outputs, frames


def run_short_items_eager(context):
    config = AlHubertConfig(**ISSUE_CONFIG)
    config._attn_implementation = "eager"
    model = AlHubertModel(config).eval()
    model.load_state_dict(context.model.state_dict())
    batch, mask = short_item_batch()
    with torch.no_grad():
        outputs = model(batch, attention_mask=mask, output_hidden_states=True)
    return outputs, model._get_feature_vector_attention_mask(outputs.last_hidden_state.shape[1], mask).sum(1)


def run_short_items_training(context):
    """SpecAugment (mask_time_prob) and dropout on a batch with 0-frame rows: finite too."""
    config = AlHubertConfig(**{**ISSUE_CONFIG, "mask_time_prob": 0.5, "mask_time_length": 2, "hidden_dropout": 0.1})
    model = AlHubertModel(config).train()
    batch, mask = short_item_batch()
    outputs = model(batch, attention_mask=mask, output_hidden_states=True)
    return outputs, model._get_feature_vector_attention_mask(outputs.last_hidden_state.shape[1], mask).sum(1)


def run_classification_pooling(context):
    model = AlHubertForSequenceClassification(AlHubertConfig(**ISSUE_CONFIG, num_labels=3)).eval()
    batch, mask = short_item_batch()
    with torch.no_grad():
        return model(batch, attention_mask=mask).logits


def check_finite_logits(value, context):
    assert value.shape == (3, 3) and torch.isfinite(value).all()


def run_upstream_pad_mask(context):
    expert = UpstreamExpert(str(context.directory))
    with torch.no_grad():
        states = expert([torch.randn(16000), torch.randn(100)])
    return states


def check_upstream_pad_mask(value, context):
    assert value["pad_mask"].sum(1).tolist() == [49, 0]
    assert torch.isfinite(value["last_hidden_state"]).all()


def run_collator_short_item(context):
    collator = AudioCollator(default_feature_extractor(context.config), max_length_samples=None)
    rows = [
        {"audio": {"array": np.zeros(16000, np.float32), "sampling_rate": 16000, "path": "long.flac"}},
        {"audio": {"array": np.zeros(100, np.float32), "sampling_rate": 16000, "path": "clip-7.flac"}},
    ]
    return collator(rows)


def run_pipeline(*args, **kwargs):
    def run(context):
        return context.extractor(*args, **kwargs)

    return run


def run_long_audio_bool_layer(context):
    return LongAudioFeatureExtractor(context.model, default_feature_extractor(context.config), layer=True)


def run_long_audio_negative_stride(context):
    return LongAudioFeatureExtractor(context.model, default_feature_extractor(context.config), stride_length_s=-1.0)


WAVE = (0.1 * np.random.RandomState(0).randn(16000)).astype(np.float32)

ROWS = [
    # 1. items shorter than the receptive field: 0 real frames (never negative lengths), finite outputs everywhere
    Row(
        "1-frame-mask-of-short-items",
        lambda c: c.model._get_feature_vector_attention_mask(49, short_item_batch()[1]).sum(1),
        check_frame_counts,
    ),
    Row(
        "1-output-lengths-never-negative",
        lambda c: c.model._get_feat_extract_output_lengths(torch.tensor([16000, 100, 0])),
        check_frame_counts,
    ),
    Row(
        "1-output-length-of-an-int",
        lambda c: c.model._get_feat_extract_output_lengths(100),
        lambda value, c: value == 0,
    ),
    Row("1-forward-sdpa-finite-with-0-frame-rows", run_short_items_all_paths, check_short_items_are_finite),
    Row("1-forward-eager-finite-with-0-frame-rows", run_short_items_eager, check_short_items_are_finite),
    Row("1-training-spec-augment-finite-with-0-frame-rows", run_short_items_training, check_short_items_are_finite),
    Row("1-classification-pooling-finite", run_classification_pooling, check_finite_logits),
    Row("1-upstream-pad-mask", run_upstream_pad_mask, check_upstream_pad_mask),
    Row(
        "1-collator-refuses-short-item-naming-it",
        run_collator_short_item,
        Raises(ValueError, (r"clip-7\.flac", "100 samples", "fewer than the 400", "remove it")),
    ),
    # 2. bool is not an int
    Row(
        "2-depth-True",
        lambda c: forward(c, torch.randn(1, 1000), depth=True),
        Raises(ValueError, ("depth must be an integer between 1 and 4", "True")),
    ),
    Row(
        "2-pipeline-layer-True",
        run_pipeline(WAVE, layer=True),
        Raises(ValueError, ('layer must be "all" or an integer', "True")),
    ),
    Row("2-long-audio-layer-True", run_long_audio_bool_layer, Raises(ValueError, ("layer must be between 0 and 4",))),
    # (already handled) depth out of range, not an integer
    *[
        Row(
            f"depth-{depth}",
            lambda c, d=depth: forward(c, torch.randn(1, 1000), depth=d),
            Raises(ValueError, ("depth must be an integer between 1 and 4",)),
        )
        for depth in (0, 5, -1, 2.5)
    ],
    # 11. dtypes, empty batches, masks, sampling rates
    Row("11-float64-input-cast", run_cast(torch.float64), check_cast(torch.float64)),
    Row("11-float16-input-cast", run_cast(torch.float16), check_cast(torch.float16)),
    Row(
        "11-empty-batch",
        lambda c: forward(c, torch.randn(0, 1000)),
        Raises(ValueError, ("empty batch", "at least one waveform")),
    ),
    Row(
        "11-mask-value-2", masked(lambda m: m * 2), Raises(ValueError, ("only 0", "and 1", "Wav2Vec2FeatureExtractor"))
    ),
    Row(
        "11-mask-fractional",
        masked(lambda m: m.float() * 0.5),
        Raises(ValueError, ("only 0", "and 1", "Wav2Vec2FeatureExtractor")),
    ),
    Row("11-mask-negative", masked(lambda m: -m), Raises(ValueError, ("only 0", "and 1"))),
    # masks with left padding or gaps: frames read from where the real samples are (issue 23; HuBERT misreads them)
    Row("11-mask-left-padded-gives-the-unpadded-features", run_left_padded(AlHubertModel), check_left_padded),
    Row("11-mask-left-padded-ctc-loss-reads-the-real-frames", run_left_padded(AlHubertForCTC), check_left_padded),
    Row("11-mask-left-padded-superb-head-reads-the-real-frames", run_left_padded(superb_head), check_left_padded),
    Row("11-mask-with-a-gap-frames-ignore-the-gap", run_gap, check_gap),
    Row(
        "11-pipeline-sampling-rate-0",
        run_pipeline({"array": WAVE, "sampling_rate": 0}),
        Raises(ValueError, ("sampling_rate must be a positive number", "0")),
    ),
    Row(
        "11-pipeline-sampling-rate-negative",
        run_pipeline({"array": WAVE, "sampling_rate": -16000}),
        Raises(ValueError, ("sampling_rate must be a positive number",)),
    ),
    Row(
        "11-long-audio-negative-stride",
        run_long_audio_negative_stride,
        Raises(ValueError, ("stride_length_s must be 0 or more",)),
    ),
    # (already handled) input values the model cannot take
    Row(
        "input-1-D",
        lambda c: forward(c, torch.randn(1000)),
        Raises(ValueError, ("2-D float tensor", "input_values\\[None\\]")),
    ),
    Row("input-3-D", lambda c: forward(c, torch.randn(1, 1, 1000)), Raises(ValueError, ("2-D float tensor",))),
    Row(
        "input-integer",
        lambda c: forward(c, torch.ones(1, 1000, dtype=torch.long)),
        Raises(ValueError, ("2-D float tensor",)),
    ),
    Row("input-list", lambda c: forward(c, [[0.0] * 1000]), Raises(ValueError, ("2-D float tensor", "got list"))),
    Row(
        "input-shorter-than-receptive-field",
        lambda c: forward(c, torch.randn(1, 399)),
        Raises(ValueError, ("399 samples", "receptive field", "pad or drop")),
    ),
    Row(
        "input-nan",
        lambda c: forward(c, torch.tensor([[float("nan")] * 1000])),
        Raises(ValueError, ("NaN or infinite", "clean the audio")),
    ),
    Row(
        "input-inf",
        lambda c: forward(c, torch.full((1, 1000), float("inf"))),
        Raises(ValueError, ("NaN or infinite",)),
    ),
    Row(
        "11-mask-a-list",
        lambda c: forward(c, torch.randn(1, 1000), [[1] * 1000]),
        Raises(ValueError, ("attention_mask must be a tensor", "got list")),
    ),
    Row(
        "mask-shape-mismatch",
        lambda c: forward(c, torch.randn(2, 1000), torch.ones(2, 999, dtype=torch.long)),
        Raises(ValueError, ("attention_mask has shape", "must match")),
    ),
    Row(
        "pipeline-2-D-array",
        run_pipeline(np.zeros((2, 3, 4), dtype=np.float32)),
        Raises(ValueError, ("1-D waveform",)),
    ),
    Row(
        "pipeline-missing-file", run_pipeline("/nonexistent/missing.wav"), Raises(FileNotFoundError, ("missing.wav",))
    ),
    Row(
        "upstream-not-a-list",
        lambda c: UpstreamExpert(str(c.directory))(torch.randn(2, 16000)),
        Raises(ValueError, ("non-empty list",)),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input(row, context):
    if isinstance(row.expect, Raises):
        with pytest.raises(row.expect.error) as raised:
            row.run(context)
        message = str(raised.value)
        assert "\n" not in message, f"multi-line message: {message!r}"
        for pattern in row.expect.patterns:
            assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    else:
        value = row.run(context)
        assert row.expect(value, context) is not False


def test_row_ids_are_unique():
    assert len({row.id for row in ROWS}) == len(ROWS)


def test_truncated_file_in_the_pipeline_still_decodes(context, tmp_path):
    """(allowed) The pipeline decodes what a truncated WAV holds, like any decoder; `alhubert extract` warns."""
    path = tmp_path / "cut.wav"
    soundfile.write(path, WAVE, 16000, subtype="PCM_16")
    with open(path, "r+b") as handle:
        handle.truncate(16000)  # half of the samples
    assert context.extractor(str(path)).shape[0] > 0
