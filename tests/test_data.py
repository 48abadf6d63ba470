"""Training data: the three sources, header lengths, resampling, down-mixing, cropping, filtering, skipping."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset
from helpers import tiny_config_kwargs
from transformers import Trainer, TrainingArguments, Wav2Vec2FeatureExtractor

from alhubert import AlHubertConfig, AlHubertForCTC
from alhubert.training.data import (
    AudioCollator,
    DataArguments,
    SkippedAudioCallback,
    load_audio_dataset,
    load_train_eval_datasets,
)


DEMO_CORPUS = Path(__file__).resolve().parents[1] / "data" / "demo_corpus"


def feature_extractor():
    return Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=False, return_attention_mask=True)


def tone(seconds, sampling_rate=16000, channels=1, frequency=220.0):
    time = np.arange(int(seconds * sampling_rate)) / sampling_rate
    wave = (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave, 0.5 * wave], axis=1)


def make_audiofolder(root, files):
    """files: name -> (waveform, sampling_rate, text). Writes the audio and a metadata.csv with transcripts."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["file_name,text"]
    for name, (wave, rate, text) in files.items():
        soundfile.write(root / name, wave, rate)
        lines.append(f"{name},{text}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_librispeech_tree_gives_paths_transcripts_and_header_lengths():
    args = DataArguments(
        librispeech_root=str(DEMO_CORPUS), librispeech_sets="train-clean-demo", eval_librispeech_sets="dev-clean-demo"
    )
    train, evaluation = load_train_eval_datasets(args, require_text=True)
    transcript_files = (DEMO_CORPUS / "train-clean-demo").rglob("*.trans.txt")
    transcripts = sum(len(path.read_text().splitlines()) for path in transcript_files)
    assert len(train) == transcripts
    assert {"audio", "text", "length"} <= set(train.column_names)
    assert len(evaluation) > 0 and not set(train["id"]) & set(evaluation["id"])
    row = train[3]
    assert row["text"].isupper() and Path(row["audio"]["path"]).is_file()
    assert row["length"] == soundfile.info(row["audio"]["path"]).frames


def test_missing_librispeech_set_names_available_sets():
    args = DataArguments(librispeech_root=str(DEMO_CORPUS), librispeech_sets="train-clean-100")
    with pytest.raises(FileNotFoundError, match="train-clean-demo"):
        load_audio_dataset(args)


def test_exactly_one_source_required():
    with pytest.raises(ValueError, match="exactly one data source"):
        DataArguments()
    with pytest.raises(ValueError, match="exactly one data source"):
        DataArguments(librispeech_root="a", audiofolder="b")


def test_audiofolder_resamples_8khz_and_downmixes_stereo(tmp_path):
    folder = make_audiofolder(
        tmp_path / "folder",
        {
            "narrow.wav": (tone(1.0, 8000), 8000, "AN EIGHT KILOHERTZ CLIP"),
            "stereo.wav": (tone(0.75, 16000, channels=2), 16000, "A STEREO CLIP"),
        },
    )
    dataset = load_audio_dataset(DataArguments(audiofolder=str(folder), min_length_samples=100), require_text=True)
    rows = {Path(row["audio"]["path"]).name: row for row in dataset}
    assert rows["narrow.wav"]["length"] == 16000  # header length converted to 16 kHz samples
    assert rows["stereo.wav"]["text"] == "A STEREO CLIP"

    collator = AudioCollator(feature_extractor(), max_length_samples=None)
    narrow = collator.decode(rows["narrow.wav"]["audio"])
    assert abs(len(narrow) - 16000) <= 16  # resampled to 16 kHz
    stereo = collator.decode(rows["stereo.wav"]["audio"])
    assert stereo.ndim == 1 and len(stereo) == 12000
    np.testing.assert_allclose(stereo, tone(0.75) * 0.75, atol=2e-4)  # mean of the two channels


def test_saved_dataset_with_other_column_names_and_missing_column_error(tmp_path):
    waves = [tone(0.6, 22050, frequency=f) for f in (200.0, 300.0)]
    dataset = Dataset.from_dict(
        {"speech": [{"array": w, "sampling_rate": 22050} for w in waves], "sentence": ["ONE", "TWO"]}
    ).cast_column("speech", Audio())
    dataset.save_to_disk(tmp_path / "saved")

    args = DataArguments(
        dataset_name=str(tmp_path / "saved"),
        audio_column_name="speech",
        text_column_name="sentence",
        min_length_samples=100,
    )
    loaded = load_audio_dataset(args, require_text=True)
    assert loaded.column_names == ["audio", "text", "length"]
    assert loaded["text"] == ["ONE", "TWO"]
    assert loaded["length"] == [round(0.6 * 16000)] * 2  # read from the in-memory WAV header

    with pytest.raises(ValueError, match=r"\['transcript'\].*\['speech', 'sentence'\]"):
        load_audio_dataset(
            DataArguments(
                dataset_name=str(tmp_path / "saved"), audio_column_name="speech", text_column_name="transcript"
            ),
            require_text=True,
        )
    with pytest.raises(ValueError, match="it has"):
        load_audio_dataset(DataArguments(dataset_name=str(tmp_path / "saved")))


def test_short_clips_dropped_or_refused_by_name(tmp_path):
    folder = make_audiofolder(
        tmp_path / "folder",
        {"long.wav": (tone(1.0), 16000, "LONG"), "tiny.wav": (tone(0.1), 16000, "TINY")},
    )
    kept = load_audio_dataset(DataArguments(audiofolder=str(folder), min_length_samples=8000))
    assert [Path(row["audio"]["path"]).name for row in kept] == ["long.wav"]
    with pytest.raises(ValueError, match="tiny.wav"):
        load_audio_dataset(DataArguments(audiofolder=str(folder), min_length_samples=8000, short_audio="error"))


def test_collator_pads_with_masks_and_crops_a_window():
    waves = [tone(0.5, frequency=100.0), tone(1.5, frequency=100.0) * np.linspace(0, 1, 24000, dtype=np.float32)]
    rows = [{"audio": {"array": wave, "sampling_rate": 16000}} for wave in waves]
    torch.manual_seed(0)
    batch = AudioCollator(feature_extractor(), max_length_samples=16000)(rows)
    assert batch["input_values"].shape == (2, 16000)
    assert batch["attention_mask"].sum(dim=1).tolist() == [8000, 16000]
    assert torch.all(batch["input_values"][0, 8000:] == 0)
    cropped = batch["input_values"][1].numpy()
    starts = [s for s in range(0, 24000 - 16000 + 1) if np.allclose(waves[1][s : s + 16000], cropped)]
    assert len(starts) == 1  # a contiguous window of the original

    uncropped = AudioCollator(feature_extractor(), max_length_samples=None)(rows)
    assert uncropped["input_values"].shape == (2, 24000)


def test_collator_pads_sequence_labels_and_stacks_scalar_labels():
    rows = [{"audio": {"array": tone(0.2), "sampling_rate": 16000}, "labels": labels} for labels in ([1, 2, 3], [4])]
    batch = AudioCollator(feature_extractor())(rows)
    assert batch["labels"].tolist() == [[1, 2, 3], [4, -100, -100]]
    rows = [{"audio": {"array": tone(0.2), "sampling_rate": 16000}, "labels": label} for label in (0, 2)]
    assert AudioCollator(feature_extractor())(rows)["labels"].tolist() == [0, 2]


def test_too_short_decoded_audio_names_the_file(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    soundfile.write(tmp_path / "short.wav", tone(0.01), 16000)
    collator = AudioCollator(feature_extractor(), min_length_samples=400)
    with pytest.raises(ValueError, match="empty.wav is empty"):
        collator([{"audio": {"path": str(tmp_path / "empty.wav"), "bytes": None}}])
    with pytest.raises(ValueError, match="short.wav has 160 samples"):
        collator([{"audio": {"path": str(tmp_path / "short.wav"), "bytes": None}}])
    assert collator.num_skipped == 0


def test_corrupt_file_is_skipped_and_counted(tmp_path):
    folder = make_audiofolder(tmp_path / "folder", {"good.wav": (tone(1.0), 16000, "GOOD")})
    (folder / "broken.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    (folder / "metadata.csv").write_text("file_name,text\ngood.wav,GOOD\nbroken.flac,BROKEN\n")
    dataset = load_audio_dataset(DataArguments(audiofolder=str(folder)))
    lengths = {Path(row["audio"]["path"]).name: row["length"] for row in dataset}
    assert lengths == {"good.wav": 16000, "broken.flac": -1}  # unknown length: kept, decided at decode time

    collator = AudioCollator(feature_extractor())
    batch = collator([dataset[0], dataset[1]])
    assert batch["input_values"].shape == (1, 16000)
    assert collator.num_skipped == 1
    metrics = {}
    SkippedAudioCallback(collator).on_evaluate(None, None, None, metrics=metrics)
    assert metrics["skipped_audio_files"] == 1
    with pytest.raises(ValueError, match="unreadable"):
        collator([row for row in dataset if row["length"] < 0])
    assert collator.num_skipped == 2


def test_streaming_yields_the_same_rows(tmp_path):
    folder = make_audiofolder(
        tmp_path / "folder", {"a.wav": (tone(1.0), 16000, "A"), "b.wav": (tone(0.1), 16000, "B")}
    )
    streamed = load_audio_dataset(DataArguments(audiofolder=str(folder), streaming=True), require_text=True)
    rows = list(streamed)
    assert [row["text"] for row in rows] == ["A"]  # the 0.1 s clip is filtered out lazily
    assert rows[0]["length"] == 16000


def test_length_column_drives_trainer_length_grouping(tmp_path):
    args = DataArguments(librispeech_root=str(DEMO_CORPUS), librispeech_sets="dev-clean-demo")
    dataset = load_audio_dataset(args)
    trainer = Trainer(
        model=AlHubertForCTC(AlHubertConfig(**tiny_config_kwargs())),
        args=TrainingArguments(
            output_dir=str(tmp_path),
            train_sampling_strategy="group_by_length",
            length_column_name="length",
            remove_unused_columns=False,
            per_device_train_batch_size=4,
            report_to=[],
        ),
        train_dataset=dataset,
        data_collator=AudioCollator(feature_extractor()),
    )
    sampler = trainer._get_train_sampler()
    assert list(sampler.lengths) == list(dataset["length"])
    first_batch = next(iter(trainer.get_train_dataloader()))
    assert first_batch["input_values"].shape[0] == 4
