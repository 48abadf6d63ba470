# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The one audio loader of the project (training, fine-tuning, the feature pipeline and the `alhubert` command):
`load_audio(source)` returns a mono float32 waveform at 16 kHz (or the rate asked for).

- soundfile decodes files (its wheel bundles libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, ...); other formats (M4A,
  AAC) fall back to torchcodec + FFmpeg when installed (`pip install "alhubert[ffmpeg]"`);
- channels are averaged, and `resample` (soxr, high quality) is the only resampler;
- sizes are bounded from the header before decoding: a sampling rate from `MIN_SAMPLING_RATE` to `MAX_SAMPLING_RATE`
  and at most `MAX_AUDIO_SECONDS` (0.9 GB of float32 at 16 kHz; longer audio is refused with a message to split it).
  Files over `BLOCK_SAMPLES` samples are decoded in blocks, each averaged to mono and resampled as it comes, so a
  small file that expands enormously (a FLAC of 192 kHz x 8 channels of silence) never needs more memory than its
  16 kHz mono result; a header that lies about the length is caught by the same bound while decoding.

Errors: `FileNotFoundError` (a missing file), `ValueError` (a file no decoder can read), `AudioRefused` and
`AudioDecoderUnavailable` (below).

This file ships as Hub remote code with the model: its optional imports sit in `try` blocks, so Transformers does not
require them of users who never decode a file.
"""

import io
import logging
import os

import numpy as np


logger = logging.getLogger(__name__)

SAMPLING_RATE = 16000
# Accepted sampling rates (speech is recorded at 8 kHz or more; 768 kHz is the highest PCM rate in use): a 1 Hz
# header would ask the resampler for 16000 output samples per input sample.
MIN_SAMPLING_RATE = 1000
MAX_SAMPLING_RATE = 768000
MAX_AUDIO_SECONDS = 4 * 3600  # longest decoded waveform (split longer recordings)
BLOCK_SAMPLES = 2**20  # files with more samples (frames x channels) are decoded block by block


class AudioRefused(ValueError):
    """Audio that decodes but is not used: a sampling rate outside the bounds, too long, or NaN/infinite samples."""


class AudioDecoderUnavailable(RuntimeError):
    """A decoder library is missing or fails to load: fix the installation (the message says how)."""


_torchcodec_problem: str | None = None  # why the torchcodec fallback cannot load, once known


def torchcodec_problem() -> str | None:
    """Why the optional torchcodec/FFmpeg fallback is unavailable (None if it loaded or was never needed)."""
    return _torchcodec_problem


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError) as error:  # OSError: libsndfile itself cannot be loaded
        raise AudioDecoderUnavailable(
            f"The audio decoder soundfile cannot be loaded ({type(error).__name__}: {error}). Fix: "
            "pip install --force-reinstall soundfile (its wheel bundles libsndfile)."
        ) from None
    return soundfile


def check_decoded_size(frames: int, sampling_rate: float, target_rate: float, name: str = "the audio") -> None:
    """Refuse, before decoding or resampling, audio whose rate lies outside `MIN_SAMPLING_RATE` to
    `MAX_SAMPLING_RATE` or whose `frames` at `sampling_rate` last longer than `MAX_AUDIO_SECONDS`."""
    for rate in (sampling_rate, target_rate):
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not rate > 0:
            raise AudioRefused(f"sampling_rate must be a positive number of samples per second, got {rate!r}.")
        if not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
            raise AudioRefused(
                f"{name} has a sampling rate of {rate:g} Hz, outside the {MIN_SAMPLING_RATE} to {MAX_SAMPLING_RATE} "
                "Hz of real audio: its header is wrong (or it is not audio); resample or re-encode it."
            )
    if frames / sampling_rate > MAX_AUDIO_SECONDS:
        raise AudioRefused(
            f"{name} lasts {_duration(frames / sampling_rate)}, longer than the {_duration(MAX_AUDIO_SECONDS)} a "
            f"waveform may last in memory; split it first (e.g. ffmpeg -i IN -f segment -segment_time 3600 "
            "part%03d.flac)."
        )


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 360 else f"{seconds:.1f} s"


def _soxr():
    try:
        import soxr
    except ImportError:
        raise AudioDecoderUnavailable("Resampling audio needs soxr: pip install soxr.") from None
    return soxr


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """Down-mix to mono and resample to `target_sr` with soxr (high quality): the project's one resampler."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:  # channels: the shorter axis
        audio = audio.mean(axis=0 if audio.shape[0] < audio.shape[1] else 1)
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    check_decoded_size(audio.size, orig_sr, target_sr)
    if int(orig_sr) == int(target_sr) or audio.size == 0:
        return audio
    return _soxr().resample(audio, int(orig_sr), int(target_sr), quality="HQ").astype(np.float32, copy=False)


class _MonoBlocks:
    """Mono blocks at `rate`, resampled to `target_rate` as they come (one soxr stream: the same result as resampling
    the whole waveform) and refused past `MAX_AUDIO_SECONDS` (for headers that understate or omit the length)."""

    def __init__(self, rate: int, target_rate: int, name: str):
        self.stream = None
        if rate != target_rate:
            self.stream = _soxr().ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
        self.target_rate, self.name = target_rate, name
        self.pieces, self.total = [], 0

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        if self.stream is not None:
            mono = self.stream.resample_chunk(mono, last=last).astype(np.float32, copy=False)
        self.pieces.append(mono)
        self.total += len(mono)
        check_decoded_size(self.total, self.target_rate, self.target_rate, self.name)

    def result(self) -> np.ndarray:
        return np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)


def _read_soundfile(soundfile, file, name: str, target_rate: int) -> np.ndarray:
    """Decode with soundfile, bounded from the header; long files block by block (mono, resampled as they come)."""
    with soundfile.SoundFile(file) as sound:
        rate, channels, frames = sound.samplerate, sound.channels, sound.frames
        known = 0 < frames < 2**62  # libsndfile reports a huge count when the header does not say
        check_decoded_size(frames if known else 0, rate, target_rate, name)
        if known and frames * channels <= BLOCK_SAMPLES:
            audio = sound.read(dtype="float32", always_2d=True)
            return resample(audio.mean(axis=1) if channels > 1 else audio[:, 0], rate, target_rate)
        blocks, block_frames = _MonoBlocks(rate, target_rate, name), max(BLOCK_SAMPLES // channels, 1024)
        while True:
            block = sound.read(block_frames, dtype="float32", always_2d=True)
            last = len(block) < block_frames
            blocks.add(block.mean(axis=1) if channels > 1 else block[:, 0], last=last)
            if last:
                return blocks.result()


def _decode_with_torchcodec(source, name: str, target_rate: int) -> tuple[np.ndarray, int]:
    """Decode at the file's own rate with torchcodec/FFmpeg (the fallback for formats libsndfile lacks)."""
    global _torchcodec_problem
    try:
        from torchcodec.decoders import AudioDecoder
    except ImportError as error:
        if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] == "torchcodec":
            raise ValueError(
                f"Cannot decode audio {name}: not a format soundfile reads (WAV, FLAC, OGG, MP3, ...); for other "
                'formats install the optional FFmpeg decoder: pip install "alhubert[ffmpeg]" (and FFmpeg).'
            ) from None
        problem = error
    except Exception as error:  # torchcodec raises RuntimeError/OSError when its FFmpeg or torch libraries mismatch
        problem = error
    else:
        decoder = AudioDecoder(source)
        metadata = decoder.metadata  # bounded from the header before anything is decoded
        rate, seconds = metadata.sample_rate or target_rate, metadata.duration_seconds_from_header
        check_decoded_size(round((seconds or 0) * rate), rate, target_rate, name)
        if seconds and seconds * rate * (metadata.num_channels or 1) <= BLOCK_SAMPLES:
            samples = decoder.get_all_samples()
            return samples.data.numpy().astype(np.float32), int(samples.sample_rate)
        return _torchcodec_blocks(decoder, rate, metadata.num_channels or 1, target_rate, name)[None], target_rate
    if _torchcodec_problem is None:
        _torchcodec_problem = _one_line(problem)
        logger.warning(
            "The optional FFmpeg decoder torchcodec is installed but cannot be loaded (%s). Files soundfile cannot "
            "read are skipped. Fix: install the torchcodec release matching your torch and FFmpeg, or uninstall "
            "torchcodec (WAV, FLAC, OGG and MP3 do not need it).",
            _torchcodec_problem,
        )
    raise ValueError(f"Cannot decode audio {name}: soundfile cannot read it and torchcodec cannot be loaded.")


def _torchcodec_blocks(decoder, rate: int, channels: int, target_rate: int, name: str) -> np.ndarray:
    """Decode a long (or unknown-length) file in time ranges of about `BLOCK_SAMPLES` samples, as `_MonoBlocks`."""
    blocks, step = _MonoBlocks(rate, target_rate, name), max(BLOCK_SAMPLES / (rate * channels), 1.0)
    for index in range(2**62):
        try:
            samples = decoder.get_samples_played_in_range(index * step, (index + 1) * step)
        except RuntimeError as error:  # FFmpeg decoded nothing more: past the end
            if "No audio frames were decoded" not in str(error):
                raise
            break
        data = samples.data.numpy()
        if data.shape[1] == 0:
            break
        blocks.add(data.mean(axis=0) if data.shape[0] > 1 else data[0])
    blocks.add(np.zeros(0, np.float32), last=True)
    return blocks.result()


def load_audio(source: str | os.PathLike | bytes | dict, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Mono float32 waveform at `sampling_rate` from a path, raw bytes, a `{"path", "bytes"}` dict (datasets' undecoded
    `Audio` value) or a `{"array", "sampling_rate"}` dict."""
    if isinstance(source, dict):
        if "array" in source:
            return resample(source["array"], source["sampling_rate"], sampling_rate)
        data, path = source.get("bytes"), source.get("path")
        source = data if data is not None else path
        if source is None:
            raise ValueError('An audio dict needs "bytes", "path" or "array" and "sampling_rate".')
    if isinstance(source, (bytes, bytearray)):
        name, file = "<in-memory bytes>", io.BytesIO(source)
    else:
        name = file = os.fspath(source)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"Audio file not found: {name}")
    soundfile = _soundfile()
    try:
        return _finite(_read_soundfile(soundfile, file, name, sampling_rate), name)
    except AudioRefused:  # decodable, but too long, at an impossible rate or not finite
        raise
    except Exception as error:  # LibsndfileError / RuntimeError: corrupt file or a format it lacks
        soundfile_error = error
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else name
    try:
        audio, rate = _decode_with_torchcodec(data, name, sampling_rate)
    except AudioRefused:
        raise
    except ValueError as error:
        raise ValueError(f"{error} (soundfile: {_one_line(soundfile_error)})") from None
    except Exception as error:  # FFmpeg could not decode it either: a corrupt or unsupported file
        raise ValueError(
            f"Cannot decode audio {name}: soundfile: {_one_line(soundfile_error)}; torchcodec: {_one_line(error)}"
        ) from None
    return _finite(resample(audio.mean(axis=0) if audio.shape[0] > 1 else audio[0], rate, sampling_rate), name)


def _finite(audio: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(audio).all():
        raise AudioRefused(f"{name} holds NaN or infinite samples; the file is damaged: clean or re-encode it.")
    return audio


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, from the file header when soundfile reads the format, else by decoding."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"Audio file not found: {name}")
    soundfile = _soundfile()
    try:
        info = soundfile.info(name)
        if info.frames > 0 or info.duration > 0:
            return float(info.frames) / info.samplerate
    except Exception:  # not a format soundfile knows: decode it (torchcodec fallback), or raise ValueError
        pass
    return len(load_audio(name, SAMPLING_RATE)) / SAMPLING_RATE
