# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The one audio loader of the project: training, fine-tuning, the feature pipeline and the `alhubert` command.

`load_audio(source)` returns a mono float32 waveform at 16 kHz (or the rate asked for):
- files are decoded with soundfile, whose wheel bundles libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3, ...), no system
  package needed;
- other formats (e.g. M4A/AAC) fall back to torchcodec + FFmpeg when they are installed (`pip install
  "alhubert[ffmpeg]"`); they are never needed for WAV/FLAC/MP3 data such as LibriSpeech or the demo corpus;
- channels are averaged, and `resample` (soxr, high quality) is the only resampler.

Errors: `FileNotFoundError` for a missing file, `ValueError` for a file no decoder can read (corrupt, unknown
format), `AudioDecoderUnavailable` when a decoder library itself cannot be loaded (an installation problem, not a data
problem; the message says how to fix it).

This file ships as Hub remote code with the model: its optional imports sit in `try` blocks, so Transformers does not
require them of users who never decode a file.
"""

import io
import logging
import os

import numpy as np


logger = logging.getLogger(__name__)

SAMPLING_RATE = 16000


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


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Float32 mono: a 2-D array is averaged over its channel axis (the shorter one)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0 if audio.shape[0] < audio.shape[1] else 1)
    return np.ascontiguousarray(audio, dtype=np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """Down-mix to mono and resample to `target_sr` with soxr (high quality): the project's one resampler."""
    for rate in (orig_sr, target_sr):
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not rate > 0:
            raise ValueError(f"sampling_rate must be a positive number of samples per second, got {rate!r}.")
    audio = to_mono(audio)
    if int(orig_sr) == int(target_sr) or audio.size == 0:
        return audio
    try:
        import soxr
    except ImportError:
        raise AudioDecoderUnavailable(
            f"Resampling {orig_sr} Hz audio to {target_sr} Hz needs soxr: pip install soxr."
        ) from None
    return soxr.resample(audio, int(orig_sr), int(target_sr), quality="HQ").astype(np.float32, copy=False)


def _decode_with_torchcodec(source, name: str) -> tuple[np.ndarray, int]:
    """Decode at the file's own rate with torchcodec/FFmpeg (the fallback for formats libsndfile lacks)."""
    global _torchcodec_problem
    try:
        from torchcodec.decoders import AudioDecoder
    except ImportError as error:
        if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] == "torchcodec":
            raise ValueError(
                f"Cannot decode audio {name}: not a format soundfile reads (WAV, FLAC, OGG, MP3, ...); for other "
                "formats install the optional FFmpeg decoder: pip install \"alhubert[ffmpeg]\" (and FFmpeg)."
            ) from None
        problem = error
    except Exception as error:  # torchcodec raises RuntimeError/OSError when its FFmpeg or torch libraries mismatch
        problem = error
    else:
        samples = AudioDecoder(source).get_all_samples()
        return samples.data.numpy().astype(np.float32), int(samples.sample_rate)
    if _torchcodec_problem is None:
        _torchcodec_problem = _one_line(problem)
        logger.warning(
            "The optional FFmpeg decoder torchcodec is installed but cannot be loaded (%s). Files soundfile cannot "
            "read are skipped. Fix: install the torchcodec release matching your torch and FFmpeg, or uninstall "
            "torchcodec (WAV, FLAC, OGG and MP3 do not need it).",
            _torchcodec_problem,
        )
    raise ValueError(f"Cannot decode audio {name}: soundfile cannot read it and torchcodec cannot be loaded.")


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
        audio, rate = soundfile.read(file, dtype="float32", always_2d=True)
        audio = audio.T  # (channels, samples)
    except Exception as soundfile_error:  # LibsndfileError / RuntimeError: corrupt file or a format it lacks
        if isinstance(file, io.BytesIO):
            file.seek(0)
        try:
            audio, rate = _decode_with_torchcodec(bytes(source) if isinstance(source, bytearray) else
                                                  (source if isinstance(source, bytes) else name), name)
        except ValueError as error:
            raise ValueError(f"{error} (soundfile: {_one_line(soundfile_error)})") from None
        except Exception as error:  # FFmpeg could not decode it either: a corrupt or unsupported file
            raise ValueError(
                f"Cannot decode audio {name}: soundfile: {_one_line(soundfile_error)}; torchcodec: {_one_line(error)}"
            ) from None
    return resample(audio.mean(axis=0) if audio.shape[0] > 1 else audio[0], rate, sampling_rate)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, from the file header when soundfile reads the format, else by decoding."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"Audio file not found: {name}")
    try:
        info = _soundfile().info(name)
        if info.frames > 0 or info.duration > 0:
            return float(info.frames) / info.samplerate
    except AudioDecoderUnavailable:
        raise
    except Exception:  # not a format soundfile knows: decode it (torchcodec fallback), or raise ValueError
        pass
    return len(load_audio(name, SAMPLING_RATE)) / SAMPLING_RATE
