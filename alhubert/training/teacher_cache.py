# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Teacher targets computed once: the selected teacher hidden states of each utterance, stored on disk.

For corpora whose clips are never cropped (every clip at most `max_length_samples`), the teacher's targets of an
utterance are the same in every epoch, so the `DistillationTrainer` (`--teacher_cache_dir DIR`) computes them in the
first epoch, stores them here and reads them back afterwards instead of running the teacher.

Layout of `DIR`:
- `manifest.json`: what the targets were made from (`TeacherCache.for_teacher`: the teacher's config and weights,
  the layers, pre-LN setting, dtypes and input settings). When any of it differs from the current run, the stored
  shards are deleted and the targets recomputed.
- `shard-<rank>-<n>.safetensors`: one float16 tensor of shape `(num_layers, frames, hidden_size)` per utterance,
  keyed by utterance id, holding only the utterance's real (unpadded) frames; the shard's metadata maps each id to the
  signature of the audio it was made from (path, size and modification time of the file, or a hash of in-memory
  bytes). An utterance whose audio signature changed is recomputed (and stored again).

Disk cost (`disk_bytes_per_hour`): 1.66 GB per hour of audio for the 6 targets of width 768 of the recipes (HuBERT
Base teacher), 2.21 GB for width 1024 (HuBERT Large).
"""

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, IterableDataset
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    FeatureExtractionMixin,
    PreTrainedModel,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.utils import logging

from ..utils.errors import one_line
from ..utils.files import atomic_write


logger = logging.get_logger(__name__)

MANIFEST_NAME = "manifest.json"
SHARD_PREFIX = "shard-"
FORMAT_VERSION = 1
UTTERANCE_KEYS = "utterance_keys"  # the batch entry the collator adds: a list of (id, audio signature)
SHARD_BYTES = 256 * 2**20  # a shard is written once the buffer holds this much


def disk_bytes_per_hour(num_layers: int, hidden_size: int, frames_per_second: float = 50.0) -> float:
    """Size of the cached targets per hour of audio: frames/s x layers x width x 2 bytes (float16) x 3600."""
    return frames_per_second * num_layers * hidden_size * 2 * 3600


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes and bytes), in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.view(torch.int16)
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def audio_signature(audio: str | dict) -> str:
    """What identifies the audio of a row: its file's path, size and mtime, or a hash of its bytes or samples."""
    if not isinstance(audio, (dict, str)):
        return "sha1:" + hashlib.sha1(np.ascontiguousarray(audio).tobytes()).hexdigest()
    if isinstance(audio, dict) and audio.get("bytes") is not None:
        return "sha1:" + hashlib.sha1(audio["bytes"]).hexdigest()
    if isinstance(audio, dict) and "array" in audio:
        array_sha1 = hashlib.sha1(np.ascontiguousarray(audio["array"]).tobytes()).hexdigest()
        return f"sha1:{array_sha1}:{audio.get('sampling_rate')}"
    path = audio.get("path") if isinstance(audio, dict) else audio
    stat = os.stat(path)
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


class TeacherCacheCollator:
    """Wraps an audio collator (e.g. `AudioCollator`): adds each row's `(id, audio signature)` to the batch.

    Refuses rows whose clip the wrapped collator would crop (their targets would change from epoch to epoch) and rows
    without an `id` column. When the wrapped collator skipped an unreadable file, the keys no longer line up with the
    batch and none are added (that batch runs the teacher).
    """

    def __init__(self, collator: Callable[[list[dict]], dict]):
        self.collator = collator
        if not hasattr(collator, "max_length_samples"):
            raise ValueError(
                f"The teacher cache needs to know that no clip is cropped, but the collator "
                f"({type(collator).__name__}) has no max_length_samples attribute; use alhubert.training.data."
                "AudioCollator."
            )
        self.max_length_samples = collator.max_length_samples

    def __getattr__(self, name: str) -> Any:  # e.g. num_skipped of the wrapped AudioCollator
        if name == "collator":
            raise AttributeError(name)
        return getattr(self.collator, name)

    def __call__(self, rows: list[dict]) -> dict:
        keys = []
        for row in rows:
            if "id" not in row:
                raise ValueError(
                    "The teacher cache keys targets by utterance id, but the rows have no 'id' column "
                    f"(they have {sorted(row)}); add one, or run without --teacher_cache_dir."
                )
            length = row.get("length")
            if self.max_length_samples and length is not None and length > self.max_length_samples:
                raise ValueError(
                    f"Utterance {row['id']} has {length} samples, more than --max_length_samples="
                    f"{self.max_length_samples}: it would be randomly cropped, so its teacher targets change from "
                    "epoch to epoch and cannot be cached. Raise --max_length_samples (or set it to 0) or run without "
                    "--teacher_cache_dir."
                )
            keys.append((str(row["id"]), audio_signature(row["audio"])))
        batch = self.collator(rows)
        if len(batch["input_values"]) == len(rows):
            batch[UTTERANCE_KEYS] = keys
        return batch


def check_no_cropping(dataset: Dataset | IterableDataset | None, max_length_samples: int | None) -> None:
    """Raise a `ValueError` when a clip of `dataset` (read from its `length` column) would be randomly cropped."""
    if not max_length_samples or dataset is None or "length" not in (dataset.column_names or []):
        return
    lengths = np.asarray(dataset["length"])
    too_long = np.flatnonzero(lengths > max_length_samples)
    unknown = np.flatnonzero(lengths < 0)
    if len(too_long) or len(unknown):
        index = int(too_long[0] if len(too_long) else unknown[0])
        raise ValueError(
            f"--teacher_cache_dir needs clips that are never cropped, but {len(too_long)} clip(s) are longer than "
            f"--max_length_samples={max_length_samples} and {len(unknown)} have an unreadable length (e.g. row "
            f"{index}, {lengths[index]} samples): their teacher targets would change from epoch to epoch. Raise "
            "--max_length_samples (0 = no crop) or run without --teacher_cache_dir."
        )


class TeacherCacheError(ValueError):
    """A `--teacher_cache_dir` that is not (or no longer) a teacher cache; `alhubert distill` prints it as one line."""

    setup_error = True


def _not_written_by_cache(path: Path) -> TeacherCacheError:
    return TeacherCacheError(
        f"{path} was not written by the teacher cache; choose an empty or new --teacher_cache_dir (nothing in this "
        "folder is replaced or deleted)."
    )


def _damaged_shard(shard: Path, problem: str) -> TeacherCacheError:
    return TeacherCacheError(
        f"Teacher cache shard {shard} {problem}; delete the folder {shard.parent} to recompute the targets."
    )


def _read_manifest(path: Path) -> dict | None:
    """The stored manifest, None when there is none; `TeacherCacheError` for a file the cache did not write."""
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TeacherCacheError(
            f"Teacher cache manifest {path} is damaged ({error}); delete the folder {path.parent} to recompute the "
            "targets, or choose another --teacher_cache_dir."
        ) from None
    if not isinstance(stored, dict) or not isinstance(stored.get("teacher"), dict) or "format" not in stored:
        raise _not_written_by_cache(path)
    return stored


def _shard_signatures(shard: Path) -> dict:
    """The audio signatures a shard stores; `TeacherCacheError` for a damaged shard or one the cache did not write."""
    try:
        with safe_open(shard, framework="pt") as handle:
            signatures = json.loads((handle.metadata() or {})["signatures"])
    except KeyError:
        raise _not_written_by_cache(shard) from None
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise _damaged_shard(shard, f"is damaged ({one_line(error)})") from None
    if not isinstance(signatures, dict):
        raise _damaged_shard(shard, "is damaged (no signature table)")
    return signatures


class TeacherCache:
    """Per-utterance teacher targets on disk (see the module docstring), with a write buffer flushed into shards.

    Files with the cache's names that it did not write (a foreign `manifest.json` or `shard-*.safetensors`), damaged
    files and stored targets that are not finite are refused with a `TeacherCacheError`, never replaced or used.
    """

    def __init__(self, directory: str | os.PathLike, manifest: dict, rank: int = 0):
        self.directory = Path(directory)
        self.manifest = {"format": FORMAT_VERSION, **manifest}
        self.rank = rank
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest_path = self.directory / MANIFEST_NAME
        stored = _read_manifest(manifest_path)
        shard_signatures = {shard: _shard_signatures(shard) for shard in self._shard_paths()}  # refuses foreign shards
        if stored is None and shard_signatures:
            raise TeacherCacheError(
                f"{self.directory} holds teacher cache shards but no {MANIFEST_NAME}; delete the "
                "shards to recompute the targets, or choose another --teacher_cache_dir."
            )
        if stored != self.manifest:
            if stored is not None:
                changed = sorted(
                    key for key in set(stored) | set(self.manifest) if stored.get(key) != self.manifest.get(key)
                )
                logger.warning(
                    f"Teacher cache {self.directory} was made from another {', '.join(changed)}: recomputing."
                )
            if rank == 0:  # the other processes build their cache after the main one (main_process_first)
                for shard in shard_signatures:
                    shard.unlink()
                text = json.dumps(self.manifest, indent=2, sort_keys=True)
                atomic_write(manifest_path, lambda name: Path(name).write_text(text, encoding="utf-8"))
        self._index: dict[str, tuple[Path, str]] = {}  # id -> (shard, audio signature)
        self._handles = {}
        self._known_shards: set[Path] = set()
        self.refresh()
        self._buffer: dict[str, torch.Tensor] = {}
        self._buffer_signatures: dict[str, str] = {}
        self._buffer_bytes = 0
        self.hits = self.misses = 0

    @classmethod
    def for_teacher(
        cls,
        directory: str | os.PathLike,
        teacher: PreTrainedModel,
        layers: list[int],
        pre_ln: bool,
        feature_extractor: FeatureExtractionMixin | None = None,
        rank: int = 0,
    ) -> "TeacherCache":
        """A cache whose manifest describes `teacher` (in its current dtype), `layers`, `pre_ln` and the input."""
        config = teacher.config.to_json_string(use_diff=False)
        manifest = {
            "teacher": {
                "name_or_path": getattr(teacher.config, "_name_or_path", ""),
                "class": type(teacher).__name__,
                "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
                "weights_sha256": weights_sha256(teacher),
            },
            "teacher_layers": [int(layer) for layer in layers],
            "pre_ln_targets": bool(pre_ln),
            "teacher_dtype": str(next(teacher.parameters()).dtype).replace("torch.", ""),
            "stored_dtype": "float16",
            "input": {
                "sampling_rate": getattr(feature_extractor, "sampling_rate", None),
                "do_normalize": getattr(feature_extractor, "do_normalize", None),
            },
        }
        return cls(directory, manifest, rank=rank)

    def refresh(self) -> None:
        """Index the shards written since the last look (by this process or, in a multi-process run, the others)."""
        for shard in self._shard_paths():
            if shard in self._known_shards:
                continue
            for key, signature in _shard_signatures(shard).items():
                self._index[key] = (shard, signature)
            self._known_shards.add(shard)

    def _shard_paths(self) -> list[Path]:
        return sorted(self.directory.glob(f"{SHARD_PREFIX}*.safetensors"))

    def __len__(self) -> int:
        return len(set(self._index) | set(self._buffer))

    def _read(self, key: str) -> torch.Tensor:
        if key in self._buffer:
            return self._buffer[key]
        shard = self._index[key][0]
        if shard not in self._handles:
            self._handles[shard] = safe_open(shard, framework="pt")
        tensor = self._handles[shard].get_tensor(key)
        if not torch.isfinite(tensor).all():
            raise _damaged_shard(shard, f"holds NaN or infinite targets for {key!r}")
        return tensor

    def _has(self, key: str, signature: str) -> bool:
        if key in self._buffer:
            return self._buffer_signatures[key] == signature
        return key in self._index and self._index[key][1] == signature

    def lookup(
        self, keys: list[tuple[str, str]], num_frames: int, device: torch.device | str | None = None
    ) -> list[torch.Tensor] | None:
        """The stored targets of a batch, zero-padded to `num_frames`: one float32 `(B, num_frames, D)` tensor per
        layer; `None` unless every utterance is stored with the same audio signature."""
        if not all(self._has(key, signature) for key, signature in keys):
            self.misses += 1
            return None
        self.hits += 1
        stored = [self._read(key) for key, _ in keys]
        num_layers, _, width = stored[0].shape
        padded = torch.zeros(num_layers, len(stored), num_frames, width, dtype=torch.float16)
        for index, states in enumerate(stored):
            frames = min(states.shape[1], num_frames)
            padded[:, index, :frames] = states[:, :frames]
        padded = padded.to(device=device, dtype=torch.float32, non_blocking=True)
        return list(padded.unbind(0))

    def store(self, keys: list[tuple[str, str]], states: list[torch.Tensor], frame_lengths: torch.Tensor) -> None:
        """Keep the real frames (`frame_lengths[i]` of them) of each utterance of a batch; written by `flush`."""
        stacked = torch.stack([state.detach() for state in states]).to("cpu", torch.float16)  # (L, B, T, D)
        for index, (key, signature) in enumerate(keys):
            tensor = stacked[:, index, : int(frame_lengths[index])].clone()
            self._buffer[key] = tensor
            self._buffer_signatures[key] = signature
            self._buffer_bytes += tensor.numel() * 2
        if self._buffer_bytes >= SHARD_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered targets into a new shard (atomically: a staging file renamed into place)."""
        if not self._buffer:
            return
        shard = self.directory / f"{SHARD_PREFIX}{self.rank:03d}-{uuid.uuid4().hex[:12]}.safetensors"
        metadata = {"signatures": json.dumps(self._buffer_signatures)}
        atomic_write(shard, lambda name: save_file(self._buffer, name, metadata=metadata))
        self._known_shards.add(shard)
        for key, signature in self._buffer_signatures.items():
            self._index[key] = (shard, signature)
        self._buffer, self._buffer_signatures, self._buffer_bytes = {}, {}, 0


class TeacherCacheCallback(TrainerCallback):
    """Flush the cache's buffer into a shard at the end of every epoch and of training; at the end of an epoch, also
    index the shards the other processes wrote (a multi-process run: each process fills the cache with its own
    part)."""

    def __init__(self, cache: TeacherCache):
        self.cache = cache

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.cache.flush()
        self.cache.refresh()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.cache.flush()
        logger.info(
            f"Teacher cache {self.cache.directory}: {len(self.cache)} utterances, "
            f"{self.cache.hits} batches read, {self.cache.misses} computed."
        )


__all__ = [
    "TeacherCache",
    "TeacherCacheCallback",
    "TeacherCacheError",
    "TeacherCacheCollator",
    "audio_signature",
    "check_no_cropping",
    "disk_bytes_per_hour",
]
