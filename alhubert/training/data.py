# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Speech data for training: a local LibriSpeech tree, any `datasets` dataset, or an audiofolder, one table format.

`load_audio_dataset` returns a `datasets.Dataset` (an `IterableDataset` with `--streaming`) with the columns
- `"audio"`: `datasets.Audio(sampling_rate=16000, decode=False)`, i.e. `{"path", "bytes"}`. Decoding is left to
  `AudioCollator`, through the project's one audio loader (`alhubert.models.audio.load_audio`: soundfile, channels
  averaged, soxr resampling; torchcodec/FFmpeg only as an optional fallback), which lets it skip a corrupt file
  instead of failing inside the data loader. Trainers must therefore keep the column:
  `TrainingArguments(remove_unused_columns=False)`;
- `"length"`: the clip length in 16 kHz samples, read from the file header (not by decoding), -1 when the header
  cannot be read. It feeds `TrainingArguments(train_sampling_strategy="group_by_length", length_column_name="length")`;
- `"text"`: the transcript, when the source has one.
"""

import io
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from datasets import Audio, Dataset, DatasetDict, IterableDataset, load_dataset, load_from_disk
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments, Wav2Vec2FeatureExtractor
from transformers.utils import logging

from ..models.audio import AudioDecoderUnavailable, load_audio, torchcodec_problem
from .arguments import DataArguments


logger = logging.get_logger(__name__)

SAMPLING_RATE = 16000

LIBRISPEECH_SETS = {
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
}


def describe_data(data_args: DataArguments, split: str = "train") -> tuple[str, list[str]]:
    """What the `split` data is, in words for a model card, and the Hub dataset ids it truly is (for its metadata).

    A LibriSpeech-layout folder is only called LibriSpeech when its sets are LibriSpeech's; the bundled demo corpus
    (synthetic espeak-ng speech) is named as such.
    """
    if data_args.librispeech_root is not None:
        sets = data_args.librispeech_sets if split == "train" else data_args.eval_librispeech_sets
        names = _split_names(sets or "")
        if Path(data_args.librispeech_root).name == "demo_corpus" or any("demo" in name for name in names):
            return (
                f"the bundled demo corpus ({', '.join(names)}): short English sentences synthesised with "
                "espeak-ng, in LibriSpeech layout; not LibriSpeech"
            ), []
        if names and set(names) <= LIBRISPEECH_SETS:
            return f"LibriSpeech {', '.join(names)}", ["librispeech_asr"]
        return f"a corpus in LibriSpeech layout ({', '.join(names)} under {data_args.librispeech_root})", []
    if data_args.dataset_name is not None:
        split_name = data_args.train_split_name if split == "train" else data_args.eval_split_name
        local = os.path.exists(data_args.dataset_name)
        words = (
            f"the dataset {data_args.dataset_name}"
            + (f" ({data_args.dataset_config_name})" if data_args.dataset_config_name else "")
            + (f", split {split_name}" if split_name else "")
        )
        return words, ([] if local else [data_args.dataset_name])
    return f"the audio files under {data_args.audiofolder} (audiofolder)", []


def _split_names(sets: str) -> list[str]:
    return [name.strip() for name in sets.split(",") if name.strip()]


def _librispeech_table(root: str, sets: list[str]) -> Dataset:
    """One row per utterance of the given sets, built from the `*.trans.txt` files (no audio is read): `id`,
    `audio`, `text`, `speaker` (the id's first part) and, when every chapter has a `*.phonemes.txt` beside its
    transcripts (`scripts/make_speech_corpus.py` writes them), `phonemes`."""
    root_path = Path(root).resolve()
    rows = {"id": [], "audio": [], "text": [], "speaker": []}
    phonemes = {}
    for name in sets:
        set_path = root_path / name
        if not set_path.is_dir():
            available = (
                sorted(path.name for path in root_path.iterdir() if path.is_dir()) if root_path.is_dir() else []
            )
            raise FileNotFoundError(f"LibriSpeech set {set_path} not found; sets under {root}: {available or 'none'}.")
        for transcript_file in sorted(set_path.glob("*/*/*.trans.txt")):
            for line in transcript_file.read_text().splitlines():
                if not line.strip():
                    continue
                utterance_id, _, text = line.strip().partition(" ")
                rows["id"].append(utterance_id)
                rows["audio"].append(str(transcript_file.parent / f"{utterance_id}.flac"))
                rows["text"].append(text)
                rows["speaker"].append(utterance_id.split("-")[0])
            phoneme_file = transcript_file.with_name(transcript_file.name.replace(".trans.txt", ".phonemes.txt"))
            if phoneme_file.is_file():
                for line in phoneme_file.read_text().splitlines():
                    utterance_id, _, text = line.strip().partition(" ")
                    phonemes[utterance_id] = text
    if not rows["id"]:
        raise FileNotFoundError(f"No *.trans.txt transcripts found in {', '.join(sets)} under {root}.")
    if all(utterance_id in phonemes for utterance_id in rows["id"]):
        rows["phonemes"] = [phonemes[utterance_id] for utterance_id in rows["id"]]
    return Dataset.from_dict(rows)


def _load_source(data_args: DataArguments, split: str) -> Dataset | IterableDataset:
    """The raw table of one split (a name of the source's own splits) from the configured source."""
    if data_args.librispeech_root is not None:
        return _librispeech_table(data_args.librispeech_root, _split_names(split))
    if data_args.audiofolder is not None:
        if not os.path.isdir(data_args.audiofolder):
            raise FileNotFoundError(f"--audiofolder {data_args.audiofolder} is not a directory.")
        return load_dataset("audiofolder", data_dir=data_args.audiofolder, split=split, streaming=data_args.streaming)
    if any(os.path.isfile(os.path.join(data_args.dataset_name, name)) for name in ("dataset_dict.json", "state.json")):
        dataset = load_from_disk(data_args.dataset_name)
        if isinstance(dataset, DatasetDict):
            if split not in dataset:
                raise ValueError(f"Split {split!r} not in {data_args.dataset_name}; it has {list(dataset)}.")
            dataset = dataset[split]
        return dataset.to_iterable_dataset() if data_args.streaming else dataset
    return load_dataset(
        data_args.dataset_name, data_args.dataset_config_name, split=split, streaming=data_args.streaming
    )


def _header_length(audio: dict) -> int:
    """Length in 16 kHz samples from the file header of an undecoded audio value; -1 when unreadable."""
    source = io.BytesIO(audio["bytes"]) if audio.get("bytes") is not None else audio.get("path")
    try:
        info = soundfile.info(source)
    except Exception:  # soundfile raises several types for missing, unsupported or corrupt files
        return -1
    return round(info.frames * SAMPLING_RATE / info.samplerate)


def _add_lengths(batch: dict) -> dict:
    return {"length": [_header_length(audio) for audio in batch["audio"]]}


def _check_short_clips(dataset: Dataset, data_args: DataArguments) -> Dataset:
    """Drop (or refuse) clips whose header length is known and below `min_length_samples`."""
    lengths = np.asarray(dataset["length"])
    short = np.flatnonzero((lengths >= 0) & (lengths < data_args.min_length_samples))
    if len(short) == 0:
        return dataset
    names = [dataset[int(index)]["audio"]["path"] for index in short[:5]]
    message = (
        f"{len(short)} clip(s) shorter than --min_length_samples={data_args.min_length_samples} "
        f"({data_args.min_length_samples / SAMPLING_RATE:.2f} s), e.g. {names}"
    )
    if data_args.short_audio == "error":
        raise ValueError(f"{message}. Remove them or lower --min_length_samples (or pass --short_audio drop).")
    logger.warning(f"Dropping {message}.")
    return dataset.select(np.setdiff1d(np.arange(len(dataset)), short))


def load_audio_dataset(
    data_args: DataArguments, split: str = "train", require_text: bool = False, label_column: str | None = None
) -> Dataset | IterableDataset:
    """Load the `"train"` or `"eval"` split of the configured source as columns `audio`, `length` (and `text`).

    With `label_column`, that column is required too and renamed `label`. Raises `ValueError` listing the available
    columns when a required column is missing, and `FileNotFoundError` for missing local paths.
    """
    if split == "train":
        source_split = data_args.librispeech_sets if data_args.librispeech_root else data_args.train_split_name
        max_samples = data_args.max_train_samples
    elif split == "eval":
        source_split = data_args.eval_librispeech_sets if data_args.librispeech_root else data_args.eval_split_name
        if source_split is None:
            raise ValueError("No evaluation data: pass --eval_librispeech_sets or --eval_split_name.")
        max_samples = data_args.max_eval_samples
    else:
        raise ValueError(f'split must be "train" or "eval", got {split!r}.')

    dataset = _load_source(data_args, source_split)
    columns = list(dataset.column_names or dataset.features or [])
    wanted = {data_args.audio_column_name: "audio"}
    if require_text or data_args.text_column_name in columns:
        wanted[data_args.text_column_name] = "text"
    if label_column is not None:
        wanted[label_column] = "label"
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise ValueError(
            f"Column(s) {missing} not found in the dataset; it has {columns}. "
            "Set --audio_column_name / --text_column_name to the right names."
        )
    extras = [name for name in ("label", "id") if name in columns and name not in wanted.values()]
    dataset = dataset.select_columns(list(wanted) + extras)
    dataset = dataset.rename_columns({old: new for old, new in wanted.items() if old != new})
    if max_samples is not None:
        dataset = (
            dataset.take(max_samples)
            if isinstance(dataset, IterableDataset)
            else dataset.select(range(min(max_samples, len(dataset))))
        )
    dataset = dataset.cast_column("audio", Audio(sampling_rate=SAMPLING_RATE, decode=False))

    if isinstance(dataset, IterableDataset):
        # Lazily, per example: headers are read as the stream goes by.
        dataset = dataset.map(_add_lengths, batched=True)
        minimum = data_args.min_length_samples
        return dataset.filter(lambda example: example["length"] < 0 or example["length"] >= minimum)
    dataset = dataset.map(
        _add_lengths, batched=True, num_proc=data_args.preprocessing_num_workers, desc="Reading audio headers"
    )
    return _check_short_clips(dataset, data_args)


def load_train_eval_datasets(
    data_args: DataArguments, require_text: bool = False, label_column: str | None = None, seed: int = 42
) -> tuple[Dataset | IterableDataset, Dataset | IterableDataset | None]:
    """Training data and evaluation data (a named eval split, a held-out percentage, or `None`)."""
    train_dataset = load_audio_dataset(data_args, "train", require_text=require_text, label_column=label_column)
    if data_args.eval_librispeech_sets or data_args.eval_split_name:
        eval_dataset = load_audio_dataset(data_args, "eval", require_text=require_text, label_column=label_column)
        return train_dataset, eval_dataset
    if data_args.validation_split_percentage is None:
        return train_dataset, None
    if isinstance(train_dataset, IterableDataset):
        raise ValueError("--validation_split_percentage needs a non-streamed dataset; name an --eval_split_name.")
    split = train_dataset.train_test_split(test_size=data_args.validation_split_percentage / 100, seed=seed)
    return split["train"], split["test"]


@dataclass
class AudioCollator:
    """Decode, down-mix, resample, randomly crop and pad a list of rows into model inputs.

    Rows hold an undecoded `"audio"` value (see `load_audio_dataset`) or an already decoded `{"array",
    "sampling_rate"}` dict. Optional `"labels"` are batched too: sequences (CTC targets) padded with -100, scalars as a
    tensor. A file that cannot be decoded is skipped with a warning and counted in `num_skipped` (shared with data
    loader workers); an empty file, or decoded audio shorter than `min_length_samples`, raises a `ValueError` naming
    the file. Set `min_length_samples` to the model's `config.receptive_field` (the default, 400, is HuBERT's): a
    shorter item would get no real frame (an all-padding row in the model).
    """

    feature_extractor: Wav2Vec2FeatureExtractor
    max_length_samples: int | None = 250000
    min_length_samples: int = 400
    # A map-style dataset (the training set) to draw random replacement rows from when EVERY file of a batch is
    # unreadable (at batch size 1, one bad file would otherwise stop the run); None: such a batch is an error.
    redraw_from: object = None
    max_redraws: int = 16

    def __post_init__(self) -> None:
        self._num_skipped = multiprocessing.Value("i", 0)

    @property
    def num_skipped(self) -> int:
        """How many unreadable files were skipped so far (all data loader workers together)."""
        return self._num_skipped.value

    def decode(self, audio: str | bytes | dict) -> np.ndarray:
        """Mono float32 waveform (mean of the channels) at the feature extractor's sampling rate."""
        return load_audio(audio, self.feature_extractor.sampling_rate)

    def _decode_row(self, row: dict) -> np.ndarray | None:
        """The row's cropped waveform; None (warned, counted) when the file cannot be decoded."""
        audio = row["audio"]
        name = (audio.get("path") if isinstance(audio, dict) else None) or "<in-memory>"
        try:
            waveform = self.decode(audio)
        except AudioDecoderUnavailable:  # an installation problem, not a data problem: stop with the fix
            raise
        except (ValueError, FileNotFoundError) as error:  # a corrupt, unreadable or missing file
            if isinstance(audio, dict) and _header_length(audio) == 0:
                raise ValueError(f"Audio {name} is empty; remove it from the data.") from error
            with self._num_skipped.get_lock():
                self._num_skipped.value += 1
            logger.warning(f"Skipping unreadable audio {name}: {error}")
            return None
        if len(waveform) == 0:
            raise ValueError(f"Audio {name} is empty; remove it from the data.")
        if len(waveform) < self.min_length_samples:
            raise ValueError(
                f"Audio {name} has {len(waveform)} samples, fewer than the "
                f"{self.min_length_samples} needed; remove it from the data or lower the minimum length."
            )
        if self.max_length_samples and len(waveform) > self.max_length_samples:
            start = int(torch.randint(0, len(waveform) - self.max_length_samples + 1, ()).item())
            waveform = waveform[start : start + self.max_length_samples]
        return waveform

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        waveforms, kept = [], []
        for row in rows:
            waveform = self._decode_row(row)
            if waveform is not None:
                waveforms.append(waveform)
                kept.append(row)
        if not waveforms and self.redraw_from is not None and len(self.redraw_from):
            for _ in range(self.max_redraws):  # skip the batch's files and draw another
                row = self.redraw_from[int(torch.randint(len(self.redraw_from), ()).item())]
                waveform = self._decode_row(row)
                if waveform is not None:
                    name = row["audio"].get("path") if isinstance(row["audio"], dict) else None
                    logger.warning(f"Every file of a batch was unreadable; drew {name or 'another row'} instead.")
                    waveforms.append(waveform)
                    kept.append(row)
                    break
        if not waveforms:
            problem = torchcodec_problem()
            raise ValueError(
                f"Every file of this batch was unreadable ({len(rows)} files"
                + (f", and {self.max_redraws} random replacements" if self.redraw_from is not None else "")
                + "); check the data"
                + (f" (the optional torchcodec decoder cannot load: {problem})." if problem else ".")
            )
        batch = self.feature_extractor(
            waveforms,
            sampling_rate=self.feature_extractor.sampling_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        batch = {"input_values": batch["input_values"], "attention_mask": batch["attention_mask"]}
        if "labels" in kept[0]:
            labels = [row["labels"] for row in kept]
            if isinstance(labels[0], (list, tuple, np.ndarray, torch.Tensor)):
                labels = [torch.as_tensor(label, dtype=torch.long) for label in labels]
                batch["labels"] = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=-100)
            else:
                batch["labels"] = torch.as_tensor(labels, dtype=torch.long)
        return batch


class SkippedAudioCallback(TrainerCallback):
    """Report the collator's count of skipped unreadable files at the end of training and after each evaluation."""

    def __init__(self, collator: AudioCollator):
        self.collator = collator

    def _report(self, when: str):
        if self.collator.num_skipped:
            logger.warning(f"{self.collator.num_skipped} unreadable audio file(s) skipped {when}.")
        else:
            logger.info(f"No unreadable audio files {when}.")

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if kwargs.get("metrics") is not None:
            kwargs["metrics"]["skipped_audio_files"] = self.collator.num_skipped
        self._report("so far (evaluation)")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._report("during training")
