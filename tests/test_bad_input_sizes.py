"""Small files that ask for huge sizes: model configs, original checkpoints and audio. Each must fail at once with a
one-line `ValueError` naming the setting, record or file (no allocation, no hang), or be handled in bounded memory.
One row per case; rows that once took minutes carry a generous time bound as a hang detector."""

import json
import re
import shutil
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from original_checkpoints import random_original_checkpoint
from transformers import AutoModel
from typer.testing import CliRunner

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.cli import app
from alhubert.models import audio
from alhubert.models.configuration_alhubert import AlHubertSuperbConfig
from alhubert.original.conversion import config_from_original, load_original_model, parse_conv_layers


CONFIG = tiny_config_kwargs(num_hidden_layers=4, num_hidden_groups=2, num_attention_heads=2)
CONV_SPEC = "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"
HANG_SECONDS = 20  # every row here answers in well under a second on an idle machine


# --- 1. configs: AlHubertConfig bounds every size, so every entry point refuses a crafted config.json -------------

HUGE_SETTINGS = {
    "layers-1e9": ({"num_hidden_layers": 10**9}, r"num_hidden_layers is 1,000,000,000, more than the 1,024"),
    "layers-1e6-block": (
        {"num_hidden_layers": 10**6, "num_hidden_groups": 1000, "layer_sharing": "block"},
        r"num_hidden_layers is 1,000,000, more than the 1,024",
    ),
    "applications-1e5": ({"num_hidden_layers": 10**5}, r"num_hidden_layers is 100,000"),
    "hidden-and-heads-1e9": ({"hidden_size": 10**9, "num_attention_heads": 10**9}, r"hidden_size is 1,000,000,000"),
    "intermediate-1e9": ({"intermediate_size": 10**9}, r"intermediate_size is 1,000,000,000"),
    "conv-dim-1e9": ({"conv_dim": [10**9] * 7}, r"conv_dim is 1,000,000,000"),
    "conv-layers-1000": (
        {"conv_dim": [16] * 1000, "conv_kernel": [2] * 1000, "conv_stride": [1] * 1000},
        r"conv_dim lists 1000 convolutions, more than 64",
    ),
    "vocab-1e9": ({"vocab_size": 10**9}, r"vocab_size is 1,000,000,000"),
    "positional-kernel-1e9": ({"num_conv_pos_embeddings": 10**9}, r"num_conv_pos_embeddings is 1,000,000,000"),
    "parameters-of-1024-wide-groups": (
        {
            "hidden_size": 16384,
            "num_attention_heads": 16,
            "intermediate_size": 65536,
            "num_hidden_layers": 1024,
            "num_hidden_groups": 1024,
        },
        r"describes about [\d,]+ parameters, more than 2,147,483,648",
    ),
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sizes") / "model"
    AlHubertModel(AlHubertConfig(**CONFIG)).save_pretrained(folder)
    return folder


def crafted_folder(saved_model: Path, tmp_path: Path, settings: dict) -> Path:
    folder = tmp_path / "crafted"
    shutil.copytree(saved_model, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **settings}))
    return folder


def via_config(folder, settings, tmp_path):
    AlHubertConfig(**{**CONFIG, **settings})


def via_auto_model(folder, settings, tmp_path):
    AutoModel.from_pretrained(folder)


def via_command(*command):
    def run(folder, settings, tmp_path):
        args = [part.format(model=folder, out=tmp_path / "out", audio=tmp_path / "a.wav") for part in command]
        soundfile.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
        result = CliRunner().invoke(app, args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
        assert not (tmp_path / "out").exists()
        raise ValueError(lines[0])

    return run


def via_push_to_hub(folder, settings, tmp_path):
    from alhubert.hub import run_upload

    with pytest.raises(SystemExit) as exit:
        run_upload.main(
            [
                "--model_dir",
                str(folder),
                "--repo_id",
                "someone/model",
                "--dry_run",
                "--staging_dir",
                str(tmp_path / "staged"),
            ]
        )
    assert not (tmp_path / "staged").exists()
    raise ValueError(str(exit.value.code))


ENTRY_POINTS = {
    "AlHubertConfig": via_config,
    "AutoModel.from_pretrained": via_auto_model,
    "info": via_command("info", "{model}"),
    "extract": via_command("extract", "{audio}", "-m", "{model}", "-o", "{out}"),
    "export-onnx": via_command("export", "onnx", "{model}", "{out}"),
    "push-to-hub-dry-run": via_push_to_hub,
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("setting", HUGE_SETTINGS)
def test_huge_config(setting, entry, saved_model, tmp_path):
    settings, pattern = HUGE_SETTINGS[setting]
    folder = crafted_folder(saved_model, tmp_path, settings)
    start = time.perf_counter()
    with pytest.raises(ValueError) as raised:
        ENTRY_POINTS[entry](folder, settings, tmp_path)
    assert time.perf_counter() - start < HANG_SECONDS
    message = str(raised.value)
    assert "\n" not in message and re.search(pattern, message), message


def test_superb_head_sizes_are_bounded():
    with pytest.raises(ValueError, match=r"superb_lstm_size is 1,000,000,000, more than the 16,384"):
        AlHubertSuperbConfig(**CONFIG, superb_lstm_size=10**9)


def test_released_and_large_models_are_within_the_bounds():
    """The bounds refuse nothing real: the presets and HuBERT X-Large's dimensions, unshared."""
    for name in ("small", "middle", "large"):
        AlHubertConfig.from_preset(name)
    AlHubertConfig(
        hidden_size=1280, num_attention_heads=16, intermediate_size=5120, num_hidden_layers=48, num_hidden_groups=48
    )


# --- 2. original checkpoints ----------------------------------------------------------------------------------


def original_checkpoint():
    return random_original_checkpoint(AlHubertConfig(**CONFIG), CONV_SPEC)[0]


def with_deflated_record(tmp_path: Path) -> Path:
    """A checkpoint whose dropped `label_embs_concat` record is deflated zeros claiming 64 MiB (a small file that
    `torch.load` would inflate in full)."""
    checkpoint = original_checkpoint()
    checkpoint["alhubert"]["label_embs_concat"] = torch.zeros(7, 3, dtype=torch.float64)  # a record of 168 bytes
    plain = tmp_path / "plain.ckpt"
    torch.save(checkpoint, plain)
    crafted = tmp_path / "crafted.ckpt"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(crafted, "w") as target:
        for record in source.infolist():
            data = source.read(record)
            if record.filename.split("/")[-2:-1] == ["data"] and len(data) == 168:
                target.writestr(record.filename, bytes(64 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
            else:
                target.writestr(record, data)
    assert crafted.stat().st_size < 2**20
    return crafted


def conv_spec(spec: str):
    def run(tmp_path):
        settings = dict(original_checkpoint()["Config"]["alhubert"], extractor_conv_feature_layers=spec)
        return config_from_original(settings)

    return run


@dataclass
class CheckpointRow:
    id: str
    run: Callable  # run(tmp_path)
    patterns: tuple


CHECKPOINT_ROWS = [
    CheckpointRow(
        "deflated-dropped-record-of-64-MiB",
        lambda tmp: load_original_model(with_deflated_record(tmp)),
        (
            r"the record \S+/data/\d+ is compressed",
            "claiming 67,108,864",
            "torch.save stores records uncompressed",
            "save the checkpoint again",
        ),
    ),
    CheckpointRow(
        "conv-string-of-2e6-tuples",
        conv_spec("[" + "(512,10,5)," * 2_000_000 + "]"),
        (r"is 22,000,002 characters long, more than the 4096", "corrupt or crafted"),
    ),
    CheckpointRow(
        "conv-string-of-20000-nested-plus",
        conv_spec("[]+" * 20000 + "[(512,10,5)]"),
        (r"characters long, more than the 4096",),
    ),
    CheckpointRow(
        "conv-string-of-1300-chained-plus", conv_spec("[]+" * 1300 + "[(512,10,5)]"), (r"nests more than 128 levels",)
    ),
    CheckpointRow(
        "conv-string-of-2000-nested-lists", conv_spec("[" * 2000 + "]" * 2000), ("is not a valid expression",)
    ),
]


@pytest.mark.parametrize("row", CHECKPOINT_ROWS, ids=[row.id for row in CHECKPOINT_ROWS])
def test_huge_checkpoint(row, tmp_path):
    start = time.perf_counter()
    with pytest.raises(ValueError) as raised:
        row.run(tmp_path)
    assert time.perf_counter() - start < HANG_SECONDS
    message = str(raised.value)
    assert "\n" not in message and "RecursionError" not in message
    for pattern in row.patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"


def test_conv_strings_of_real_models_still_parse():
    assert len(parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")) == 7
    spelled_out = " + ".join(["[(512,3,2)]"] * 64)  # 64 layers one by one: 893 characters, 66 levels
    assert len(parse_conv_layers(spelled_out)) == 64


# --- 3. audio -------------------------------------------------------------------------------------------------


def wav_at_1_hz(tmp_path):
    path = tmp_path / "slow.wav"
    soundfile.write(path, np.zeros(200_000, np.float32), 1, subtype="PCM_16")  # 400 KB
    return audio.load_audio(path)


def set_flac_length(path: Path, frames: int) -> None:
    """Rewrite the total sample count in a FLAC file's STREAMINFO (0: unknown)."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    packed = struct.unpack(">Q", data[18:26])[0]  # rate (20 bits) channels (3) bits (5) total samples (36)
    data[18:26] = struct.pack(">Q", (packed & ~(2**36 - 1)) | frames)
    path.write_bytes(bytes(data))


def flac_declaring_hours(hours):
    """A 1 s FLAC (192 kHz, 8 channels) whose STREAMINFO announces `hours` hours."""

    def run(tmp_path):
        path = tmp_path / "long.flac"
        soundfile.write(path, np.zeros((192000, 8), np.float32), 192000, subtype="PCM_16")
        set_flac_length(path, int(hours * 3600 * 192000))
        return audio.load_audio(path)

    return run


@dataclass
class AudioRow:
    id: str
    run: Callable
    patterns: tuple


AUDIO_ROWS = [
    AudioRow("wav-at-1-hz", wav_at_1_hz, (r"slow\.wav has a sampling rate of 1 Hz", "outside the 1000 to 768000 Hz")),
    AudioRow(
        "flac-header-announcing-5-hours",
        flac_declaring_hours(5),
        (r"long\.flac lasts 5\.0 hours, longer than the 4\.0 hours", "split it first"),
    ),
    AudioRow(
        "array-at-1-hz",
        lambda tmp: audio.resample(np.zeros(400_000, np.float32), 1, 16000),
        ("sampling rate of 1 Hz",),
    ),
    AudioRow(
        "array-of-5-hours",
        lambda tmp: audio.load_audio({"array": np.zeros(5 * 3600 * 1000, np.float32), "sampling_rate": 1000}),
        ("lasts 5.0 hours",),
    ),
]


@pytest.mark.parametrize("row", AUDIO_ROWS, ids=[row.id for row in AUDIO_ROWS])
def test_huge_audio(row, tmp_path):
    start = time.perf_counter()
    with pytest.raises(audio.AudioRefused) as raised:
        row.run(tmp_path)
    assert time.perf_counter() - start < HANG_SECONDS
    message = str(raised.value)
    assert "\n" not in message
    for pattern in row.patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"


def test_a_long_multichannel_file_is_decoded_in_blocks(tmp_path):
    """8 s of 192 kHz x 8 channels (49 MB as float32) decode block by block: the traced peak stays a fraction of
    that, and the result equals decoding it whole, averaging and resampling in one go."""
    path = tmp_path / "loud.flac"
    t = np.arange(8 * 192000) / 192000
    channels = np.stack([0.1 * np.sin(2 * np.pi * (200 + 50 * c) * t) for c in range(8)], 1).astype(np.float32)
    soundfile.write(path, channels, 192000, subtype="PCM_16")
    whole_bytes = channels.nbytes
    del channels, t
    tracemalloc.start()
    try:
        decoded = audio.load_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < whole_bytes / 3, f"peak {peak / 2**20:.1f} MiB for a {whole_bytes / 2**20:.1f} MiB file"
    whole, rate = soundfile.read(path, dtype="float32")
    np.testing.assert_array_equal(decoded, audio.resample(whole.mean(axis=1), rate, 16000))


def unknown_length_flac(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """3 s of 48 kHz stereo whose header does not state the length (as FLAC streamed to a pipe), and the expected
    16 kHz mono waveform."""
    pytest.importorskip("torchcodec")  # libsndfile cannot read such a file; the FFmpeg fallback decodes it
    path = tmp_path / "streamed.flac"
    t = np.arange(3 * 48000) / 48000
    stereo = np.stack([0.1 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32)
    soundfile.write(path, stereo, 48000, subtype="PCM_16")
    whole, rate = soundfile.read(path, dtype="float32")
    set_flac_length(path, 0)
    return path, audio.resample(whole.mean(axis=1), rate, 16000)


def test_a_file_of_unknown_length_is_decoded_in_ranges(tmp_path):
    path, expected = unknown_length_flac(tmp_path)
    try:
        decoded = audio.load_audio(path)
    except audio.AudioDecoderUnavailable as error:
        pytest.skip(f"torchcodec is installed but cannot load: {error}")
    np.testing.assert_array_equal(decoded, expected)


def test_a_file_of_unknown_length_is_bounded_while_decoding(tmp_path, monkeypatch):
    """The length bound also holds when no header states the length: it is checked as the blocks come (the limit is
    lowered to 2 s here, so that a 3 s file crosses it)."""
    path, _ = unknown_length_flac(tmp_path)
    monkeypatch.setattr(audio, "MAX_AUDIO_SECONDS", 2)
    with pytest.raises(audio.AudioRefused, match=r"streamed\.flac lasts 3\.0 s, longer than the 2\.0 s"):
        audio.load_audio(path)


def test_row_ids_are_unique():
    ids = [row.id for row in CHECKPOINT_ROWS] + [row.id for row in AUDIO_ROWS]
    assert len(set(ids)) == len(ids)
