"""The one audio loader (`alhubert.models.audio`): soundfile without torchcodec, one resampler, the same arrays on
every
path (training collator, feature pipeline, `alhubert extract`), and decoder failures told apart from bad files."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from transformers import Wav2Vec2FeatureExtractor, pipeline
from typer.testing import CliRunner

import alhubert  # noqa: F401
from alhubert import AlHubertConfig, AlHubertModel
from alhubert.cli import app
from alhubert.models import audio as audio_module
from alhubert.models.audio import AudioDecoderUnavailable, audio_duration, load_audio, resample
from alhubert.training.data import AudioCollator


REPO = Path(__file__).resolve().parents[1]
DEMO_FLAC = sorted((REPO / "data" / "demo_corpus" / "dev-clean-demo").rglob("*.flac"))[0]


def stereo_44k(path, seconds=0.7):
    rng = np.random.default_rng(0)
    time = np.arange(int(44100 * seconds)) / 44100
    left = 0.3 * np.sin(2 * np.pi * 220 * time) + 0.01 * rng.standard_normal(len(time))
    right = 0.2 * np.sin(2 * np.pi * 330 * time)
    soundfile.write(path, np.stack([left, right], axis=1).astype(np.float32), 44100)
    return path


def raw_extractor():
    return Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True)


def test_decodes_every_bundled_format_to_16k_mono_float32(tmp_path):
    for extension in ("wav", "flac", "ogg", "mp3"):
        path = stereo_44k(tmp_path / f"clip.{extension}")
        waveform = load_audio(path)
        assert waveform.dtype == np.float32 and waveform.ndim == 1, extension
        assert abs(len(waveform) - round(0.7 * 16000)) <= 600, (extension, len(waveform))  # mp3 adds codec delay
    assert load_audio(DEMO_FLAC).shape == (round(audio_duration(DEMO_FLAC) * 16000),)


def test_one_resampler_and_downmix():
    stereo = np.stack([np.ones(44100, np.float32), np.zeros(44100, np.float32)])
    mono = resample(stereo, 44100, 16000)
    assert mono.shape == (16000,) and np.allclose(mono[1000:-1000], 0.5, atol=1e-3)
    same = np.arange(10, dtype=np.float64)
    assert resample(same, 16000, 16000).dtype == np.float32


def test_collator_pipeline_and_cli_give_identical_arrays_for_a_44k_stereo_file(tmp_path):
    path = stereo_44k(tmp_path / "stereo.flac")
    reference = load_audio(path)
    # training and fine-tuning: the collator decodes datasets' undecoded {"path", "bytes"} values
    collated = AudioCollator(raw_extractor(), max_length_samples=None)([{"audio": {"path": str(path), "bytes": None}}])
    np.testing.assert_array_equal(collated["input_values"][0].numpy(), reference)
    in_memory = AudioCollator(raw_extractor(), max_length_samples=None)(
        [{"audio": {"path": None, "bytes": path.read_bytes()}}]
    )
    np.testing.assert_array_equal(in_memory["input_values"][0].numpy(), reference)
    # the feature pipeline
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs(), do_normalize=False)).save_pretrained(model_dir)
    extractor = pipeline("audio-feature-extraction", model=str(model_dir))
    np.testing.assert_array_equal(extractor.preprocess(str(path))["input_values"][0].numpy(), reference)
    # the command line: its features equal the model's on the reference waveform
    output = tmp_path / "features.npy"
    result = CliRunner().invoke(app, ["extract", str(path), "--model", str(model_dir), "--output", str(output)])
    assert result.exit_code == 0, result.output
    model = AlHubertModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(reference)[None]).last_hidden_state[0].numpy()
    np.testing.assert_array_equal(np.load(output), expected)


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_training_decoding_works_with_torchcodec_absent(tmp_path):
    stereo_44k(tmp_path / "stereo.mp3")
    result = run_python(f"""
        import sys
        sys.modules["torchcodec"] = None  # `import torchcodec` now fails, as in an install without it
        import numpy as np
        from transformers import Wav2Vec2FeatureExtractor
        from alhubert.training.arguments import DataArguments
        from alhubert.training.data import AudioCollator, load_audio_dataset
        dataset = load_audio_dataset(DataArguments(librispeech_root={str(DEMO_FLAC.parents[3])!r},
                                                   librispeech_sets="dev-clean-demo", max_eval_samples=4))
        collator = AudioCollator(Wav2Vec2FeatureExtractor(return_attention_mask=True), max_length_samples=None)
        batch = collator([dataset[index] for index in range(4)])
        assert collator.num_skipped == 0 and batch["input_values"].shape[0] == 4
        from alhubert.models.audio import load_audio
        assert load_audio({str(tmp_path / "stereo.mp3")!r}).ndim == 1
        assert "torchcodec" not in {{name.split(".")[0] for name, module in sys.modules.items() if module}}
        print("decoded", batch["input_values"].shape)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "decoded" in result.stdout


def test_collator_decodes_the_demo_corpus_with_torchcodec_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # `import torchcodec` fails, as in an install without it
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)
    collator = AudioCollator(raw_extractor(), max_length_samples=None)
    batch = collator(
        [
            {"audio": {"path": str(DEMO_FLAC), "bytes": None}},
            {"audio": {"path": None, "bytes": DEMO_FLAC.read_bytes()}},
        ]
    )
    assert batch["input_values"].shape[0] == 2 and collator.num_skipped == 0


def test_unknown_format_without_torchcodec_names_the_optional_decoder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcodec", None)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)
    path = tmp_path / "clip.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(200))
    with pytest.raises(ValueError, match=r"alhubert\[ffmpeg\]"):
        load_audio(path)


def test_a_torchcodec_that_cannot_load_is_reported_once_and_files_stay_skipped(tmp_path, monkeypatch, caplog):
    class BrokenLibrary:
        def __getattr__(self, name):
            raise RuntimeError("Could not load libtorchcodec: undefined symbol (torch mismatch)")

    monkeypatch.setitem(sys.modules, "torchcodec.decoders", BrokenLibrary())
    monkeypatch.setattr(audio_module, "_torchcodec_problem", None)
    corrupt = []
    for index in range(3):
        corrupt.append(tmp_path / f"corrupt{index}.m4a")
        corrupt[-1].write_bytes(bytes(range(256)) * 4)
    good = stereo_44k(tmp_path / "good.flac")
    collator = AudioCollator(raw_extractor(), max_length_samples=None)
    rows = [{"audio": {"path": str(path), "bytes": None}} for path in [*corrupt, good]]
    with caplog.at_level("WARNING"):
        batch = collator(rows)
    assert batch["input_values"].shape[0] == 1 and collator.num_skipped == 3
    assert sum("torchcodec is installed but cannot be loaded" in record.message for record in caplog.records) == 1
    with pytest.raises(ValueError, match="torchcodec decoder cannot load: RuntimeError"):
        collator(rows[:2])


def test_a_soundfile_that_cannot_load_stops_with_the_fix_instead_of_skipping(tmp_path, monkeypatch):
    path = stereo_44k(tmp_path / "good.flac")
    monkeypatch.setitem(sys.modules, "soundfile", None)
    collator = AudioCollator(raw_extractor(), max_length_samples=None)
    with pytest.raises(AudioDecoderUnavailable, match="pip install --force-reinstall soundfile"):
        collator([{"audio": {"path": str(path), "bytes": None}}])
    assert collator.num_skipped == 0


@pytest.mark.parametrize(
    "source, error, message",
    [
        ("missing.flac", FileNotFoundError, "Audio file not found"),
        ({"path": None, "bytes": None}, ValueError, "needs"),
        ({"bytes": b"not audio at all" * 10}, ValueError, "Cannot decode audio <in-memory bytes>"),
    ],
)
def test_bad_input_rows(tmp_path, source, error, message):
    if isinstance(source, str):
        source = tmp_path / source
    with pytest.raises(error, match=message) as raised:
        load_audio(source)
    assert "\n" not in str(raised.value)
