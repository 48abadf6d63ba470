import json

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2Processor, pipeline

from alhubert import (
    AlHubertConfig,
    AlHubertForCTC,
    AlHubertForSequenceClassification,
    AlHubertModel,
    default_feature_extractor,
)


CHARACTERS = ["<pad>", "<unk>", "|", "A", "B", "C", "D", "E", "'"]


def save_ctc_model(directory):
    vocab = {character: index for index, character in enumerate(CHARACTERS)}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(directory / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    config = AlHubertConfig(**tiny_config_kwargs(vocab_size=len(vocab), pad_token_id=vocab["<pad>"]))
    torch.manual_seed(0)
    model = AlHubertForCTC(config).eval()
    with torch.no_grad():  # make the head always predict "B" so the transcript is known
        model.lm_head.weight.zero_()
        model.lm_head.bias.fill_(-10.0)
        model.lm_head.bias[vocab["B"]] = 10.0
    processor = Wav2Vec2Processor(feature_extractor=default_feature_extractor(config), tokenizer=tokenizer)
    processor.save_pretrained(directory)
    model.save_pretrained(directory)
    return model


def test_asr_pipeline_on_a_saved_directory(tmp_path):
    save_ctc_model(tmp_path)
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path))
    assert type(asr.model) is AlHubertForCTC
    assert asr(np.random.randn(16000).astype(np.float32))["text"] == "B"


def test_audio_classification_pipeline(tmp_path):
    labels = {0: "yes", 1: "no", 2: "maybe"}
    config = AlHubertConfig(
        **tiny_config_kwargs(num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    )
    torch.manual_seed(0)
    model = AlHubertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))
    model.save_pretrained(tmp_path)
    classifier = pipeline("audio-classification", model=str(tmp_path))
    result = classifier(np.random.randn(8000).astype(np.float32))
    assert result[0]["label"] == "no" and result[0]["score"] > 0.99
    assert {r["label"] for r in result} == {"yes", "no", "maybe"}


@pytest.fixture
def feature_model_dir(tmp_path):
    torch.manual_seed(0)
    model = AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def test_audio_feature_extraction_pipeline(feature_model_dir, tmp_path):
    model, directory = feature_model_dir
    extractor = pipeline("audio-feature-extraction", model=str(directory))
    audio = (0.1 * np.random.RandomState(0).randn(16000)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(audio)[None], output_hidden_states=True)

    last = extractor(audio)
    assert last.shape == (49, 32)
    np.testing.assert_allclose(last, expected.last_hidden_state[0].numpy(), atol=1e-5)

    third = extractor(audio, layer=3)
    np.testing.assert_allclose(third, expected.hidden_states[3][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(extractor(audio, layer=-1), expected.hidden_states[-1][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(extractor(audio, layer=0), expected.hidden_states[0][0].numpy(), atol=1e-5)

    every = extractor(audio, layer="all")
    assert every.shape == (7, 49, 32)

    # a file path, and a dict at another sampling rate, are decoded and resampled to 16 kHz
    soundfile.write(tmp_path / "clip.wav", audio, 16000, subtype="FLOAT")
    np.testing.assert_allclose(extractor(str(tmp_path / "clip.wav")), last, atol=1e-4)
    at_8k = extractor({"array": audio[::2], "sampling_rate": 8000})
    assert at_8k.shape == (49, 32)

    with pytest.raises(ValueError, match="layer must be"):
        extractor(audio, layer=7)
    with pytest.raises(ValueError, match="1-D waveform"):
        extractor(np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        extractor(str(tmp_path / "missing.wav"))


@pytest.mark.parametrize("keyword", ["dtype", "torch_dtype"])
def test_audio_feature_extraction_pipeline_in_bfloat16(feature_model_dir, keyword):
    model, directory = feature_model_dir
    extractor = pipeline("audio-feature-extraction", model=str(directory), **{keyword: torch.bfloat16})
    assert extractor.model.dtype == torch.bfloat16
    audio = (0.1 * np.random.RandomState(0).randn(16000)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(audio)[None], output_hidden_states=True).hidden_states
    bf16_unit_roundoff = 2.0**-8
    for layer in (None, 0, 3):
        features = extractor(audio) if layer is None else extractor(audio, layer=layer)
        reference = expected[-1 if layer is None else layer][0].numpy()
        assert features.dtype == np.float32 and features.shape == reference.shape
        relative_error = np.linalg.norm(features - reference) / np.linalg.norm(reference)
        assert 0 < relative_error <= 8 * bf16_unit_roundoff  # bf16 really ran; bound from tests/test_bf16_native.py
