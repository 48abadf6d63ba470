# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The `alhubert` command line (Typer, like Transformers' own `transformers` command): `extract` (features from audio
files), `info` (a model's shape), `export onnx`, and the training, conversion and upload commands of `FORWARDED`,
which pass their arguments to the HfArgumentParser-based entry point of their module.
"""

import math
import os
import re
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .utils.errors import one_line
from .utils.files import atomic_write, check_writable_folder
from .utils.model_checks import missing_saved_weights, refuse_missing_weights, refuse_non_boolean_flags


if TYPE_CHECKING:
    from transformers import FeatureExtractionMixin, PreTrainedModel


app = typer.Typer(
    help="ALHuBERT command line: extract speech features, inspect saved models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class CommandError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _fail(message: str, code: int = 1):
    typer.secho(f"Error: {one_line(message)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


def _warn(message: str):
    """One warning line on stderr (through tqdm, so that it does not land inside a progress bar)."""
    from tqdm.auto import tqdm

    tqdm.write(f"Warning: {one_line(message)}", file=sys.stderr)


def resolve_device(device: str | None) -> str:
    """The torch device to run on: `device` checked to exist here (default: cuda when available, else cpu)."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise CommandError(f"Unknown --device {device!r}; use cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise CommandError(
                f"--device {device} was given but CUDA is not available here (no GPU, or a CPU-only PyTorch); "
                "use --device cpu."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise CommandError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible.")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise CommandError(f"--device {device} was given but MPS is not available here; use --device cpu.")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise CommandError(f"--device {device}: unsupported device type {parsed.type!r}; use cpu, cuda or cuda:N.")
    return str(parsed)


def _load_error(model_name_or_path: str, error: Exception) -> str:
    import pickle

    if isinstance(error, pickle.UnpicklingError):
        refused = sorted(set(re.findall(r"unsupported GLOBAL (\S+)", str(error))))
        return (
            f"Cannot load the model {model_name_or_path!r}: its pickled weights (.bin) hold Python objects other than "
            f"tensors{' (' + ', '.join(refused) + ')' if refused else ''}, which are not loaded because that could "
            "run code; use safetensors weights (model.safetensors) from a source you trust."
        )
    if type(error).__name__ == "SafetensorError":
        return (
            f"Cannot load the model {model_name_or_path!r}: its safetensors weights are damaged or truncated "
            f"({one_line(error)}); download or save the model again."
        )
    hint = "" if Path(model_name_or_path).is_dir() else " It is neither a local folder nor a reachable Hub model id."
    return f"Cannot load the model {model_name_or_path!r}:{hint} {one_line(error)}"


DTYPES = ("float32", "bfloat16")


def cpu_has_fast_bf16() -> bool:
    """Whether torch has fast bf16 matrix products on this CPU (oneDNN with AVX-512-BF16 or AMX); without them bf16
    matmuls fall back to a reference kernel tens of times slower than float32."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def load_encoder(
    model_name_or_path: str, device: str | None = None, dtype: str = "float32"
) -> tuple["PreTrainedModel", "FeatureExtractionMixin"]:
    """Load a speech encoder (`AutoModel`) and its feature extractor from a local folder or a Hub model id, with its
    weights in `dtype` (bfloat16: the native bf16 path, see `alhubert.models.fast_cpu_path`)."""
    import pickle

    import torch
    import transformers
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError
    from transformers import AutoFeatureExtractor, AutoModel  # ALHuBERT is registered on `import alhubert`

    transformers.utils.logging.disable_progress_bar()  # quiet: the command shows its own progress over the files
    device = resolve_device(device)
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
        model, loading = AutoModel.from_pretrained(
            model_name_or_path, output_loading_info=True, dtype=getattr(torch, dtype)
        )
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        RuntimeError,
        pickle.UnpicklingError,
        SafetensorError,
        StrictDataclassError,
    ) as error:  # the last: a config.json that fails Transformers' own checks
        raise CommandError(_load_error(model_name_or_path, error)) from error
    refuse_missing_weights(loading["missing_keys"], model.config, model_name_or_path)
    refuse_non_boolean_flags(feature_extractor, model_name_or_path)
    return model.to(device).eval(), feature_extractor


def _output_plan(audio: list[Path], output: Path, overwrite: bool) -> dict[Path, str]:
    """Map each audio file to its key in the output (safetensors / npy) or its `.npy` file (output folder), refusing
    before any work outputs that cannot be written."""
    if len(set(audio)) != len(audio):
        raise CommandError("An audio file is given twice; list each file once.")
    if output.suffix == ".safetensors":
        plan, files = {path: str(path) for path in audio}, [output]
    elif output.suffix == ".npy":
        if len(audio) != 1:
            raise CommandError(
                f"A .npy output holds one array but {len(audio)} audio files were given; use a .safetensors file "
                "(one entry per audio file) or a folder (one .npy per audio file)."
            )
        plan, files = {audio[0]: str(output)}, [output]
    elif output.suffix:
        raise CommandError(f"Unsupported output {output}: use a .safetensors or .npy file, or a folder.")
    else:
        if output.exists() and not output.is_dir():
            raise CommandError(f"The output folder {output} is a file; give a folder (or a .safetensors file).")
        plan = {path: str(output / f"{path.stem}.npy") for path in audio}
        if len(set(plan.values())) != len(plan):
            raise CommandError("Several audio files share a name; write them to a .safetensors file, not a folder.")
        files = [Path(name) for name in plan.values()]
    folders = [name for name in files if name.is_dir()]
    if folders:
        raise CommandError(f"The output {folders[0]} is a folder; give a file name that does not exist yet.")
    existing = [name for name in files if name.exists()]
    if existing and not overwrite:
        raise CommandError(f"{existing[0]} already exists; pass --overwrite to replace it.")
    check_writable_folder(output if not output.suffix else output.parent, what="features")
    return plan


def declared_frames(path: Path) -> tuple[int, int] | None:
    """`(frames, sampling_rate)` that the file's header announces, or None when unknown: for WAV from the RIFF `data`
    chunk's size (libsndfile silently shortens a truncated WAV's frame count), else soundfile's header count."""
    import soundfile

    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                block_align = rate = None
                while len(chunk := handle.read(8)) == 8:
                    name, size = struct.unpack("<4sI", chunk)
                    if name == b"fmt ":
                        fmt = handle.read(size + size % 2)
                        rate, block_align = struct.unpack("<I", fmt[4:8])[0], struct.unpack("<H", fmt[12:14])[0]
                    elif name == b"data":
                        if not block_align or size in (0, 0xFFFFFFFF):  # streaming writers leave it unset
                            return None
                        return size // block_align, rate
                    else:
                        handle.seek(size + size % 2, os.SEEK_CUR)
                return None
        info = soundfile.info(str(path))
        return (info.frames, info.samplerate) if 0 < info.frames < 2**62 else None
    except Exception:  # unknown or unreadable header: nothing to compare with
        return None


@app.command()
def extract(
    audio: Annotated[
        list[Path],
        typer.Argument(help="Audio files (WAV, FLAC, OGG, MP3; other formats with torchcodec); 16 kHz mono."),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model folder or Hub model id.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="A .safetensors file (one entry per audio file, keyed by its path), a .npy file (one audio file) "
            "or a folder (one <name>.npy per audio file).",
        ),
    ],
    layer: Annotated[
        int | None,
        typer.Option(
            help="hidden_states index: 0 = encoder input, k = output of layer application k. "
            "Default: the model's last_hidden_state."
        ),
    ] = None,
    chunk_length_s: Annotated[
        float, typer.Option(help="Longest audio (seconds) the model sees at once; longer files go in windows.")
    ] = 30.0,
    stride_length_s: Annotated[
        float, typer.Option(help="Context (seconds) on each side of a window whose frames are dropped when stitching.")
    ] = 5.0,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass (grouped by length).")] = 8,
    device: Annotated[str | None, typer.Option(help="Torch device (default: cuda when available, else cpu).")] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="CPU threads for torch (default: OMP_NUM_THREADS when set, else all "
            "cores); on a shared machine, your share of the cores.",
        ),
    ] = None,
    dtype: Annotated[
        str,
        typer.Option(
            help="Weights and compute: float32, or bfloat16 (native bf16, fastest on CPUs with AMX or "
            "AVX-512-BF16 and on GPUs; features are written as float32 either way)."
        ),
    ] = "float32",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            help="Stop at the first unreadable or too short audio file (default: skip it, name it "
            "and process the others)."
        ),
    ] = False,
) -> None:
    """Extract one layer's features from audio files, in bounded memory for long recordings.

    Unreadable, empty, too short or NaN-holding files are skipped with a warning naming each (exit code 0 when at
    least one file was written; 1 when none could be); with --strict the first one stops the run and nothing is
    written. Features that come out NaN or infinite from finite audio mean a damaged model: the run stops with exit
    code 1 naming the file, and no features of it or of later files are saved (a .safetensors output is not
    written; in a folder output, the .npy files of files finished before it stay).
    """
    import numpy as np
    from safetensors.numpy import save_file
    from tqdm.auto import tqdm

    from .inference.long_audio import LongAudioFeatureExtractor
    from .models.audio import AudioDecoderUnavailable, audio_duration, load_audio
    from .utils.threads import set_threads

    set_threads(threads)
    if not 0 <= stride_length_s < math.inf:
        _fail(f"--stride-length-s must be 0 or more seconds (finite), got {stride_length_s}.", code=2)
    if not 0 < chunk_length_s < math.inf:
        _fail(f"--chunk-length-s must be a positive number of seconds (finite), got {chunk_length_s}.", code=2)
    if batch_size < 1:
        _fail(f"--batch-size must be at least 1, got {batch_size}.", code=2)
    if dtype not in DTYPES:
        _fail(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.", code=2)
    skipped = {}

    def skip(path, reason):
        if strict:
            raise CommandError(f"{reason} (--strict: stopped at this file)")
        skipped[path] = reason
        _warn(f"skipping {path}: {reason}")

    try:
        destinations = _output_plan(audio, output, overwrite)
        device = resolve_device(device)
        if dtype == "bfloat16" and device == "cpu" and not cpu_has_fast_bf16():
            _warn(
                "this CPU has no bf16 matrix instructions (AVX-512-BF16 or AMX) that torch uses: --dtype bfloat16 "
                "runs far slower than float32 here; use --dtype float32 (the default) on this machine."
            )
        durations = {}
        for path in audio:
            try:  # AudioDecoderUnavailable, an installation problem rather than a bad file, stops with the fix
                durations[path] = audio_duration(path)
            except FileNotFoundError as error:
                skip(path, str(error))
            except ValueError as error:
                skip(path, f"Cannot read audio file {path}: {one_line(error)}")
        encoder, feature_extractor = load_encoder(model, device, dtype)
        extractor = LongAudioFeatureExtractor(
            encoder, feature_extractor, layer, chunk_length_s, stride_length_s, batch_size
        )
        rate, needed = feature_extractor.sampling_rate, extractor.receptive_field
        ordered = sorted(durations, key=durations.__getitem__)  # similar lengths share batches
        yielded = []

        def waveforms():
            for path in ordered:
                try:
                    array = load_audio(str(path), rate)
                except (FileNotFoundError, ValueError) as error:
                    skip(path, one_line(error))
                    continue
                if len(array) < needed:
                    skip(
                        path,
                        f"{path} has {len(array)} samples at {rate} Hz ({1000 * len(array) / rate:.1f} ms), "
                        f"fewer than the {needed} the model needs for one frame; drop or pad such short audio",
                    )
                    continue
                declared = declared_frames(path)
                if declared is not None and len(array) < round(declared[0] * rate / declared[1]) - rate // 100:
                    _warn(
                        f"{path} looks truncated: its header announces {declared[0] / declared[1]:.2f} s but only "
                        f"{len(array) / rate:.2f} s decoded; its features cover only the decoded part."
                    )
                yielded.append(path)
                yield array

        features = {}
        with tqdm(total=len(ordered), unit="file", desc="Extracting") as progress:
            for position, array in extractor(waveforms()):
                path = yielded[position]
                if not np.isfinite(array).all():  # finite audio (load_audio checks it): the model is at fault
                    raise CommandError(
                        f"The features of {path} are NaN or infinite although its audio is finite: the model {model} "
                        "is damaged (its weights overflow); they are not saved. Use an earlier checkpoint."
                    )
                if output.suffix == ".safetensors":
                    features[destinations[path]] = array
                else:
                    atomic_write(Path(destinations[path]), lambda name, a=array: np.save(name, a))
                progress.update(1)
        if not yielded:
            raise CommandError(f"None of the {len(audio)} audio file(s) could be processed; nothing was written.")
        if output.suffix == ".safetensors":
            metadata = {"model": model, "layer": "last_hidden_state" if layer is None else str(layer)}
            atomic_write(output, lambda name: save_file(features, name, metadata=metadata))
    except (CommandError, ValueError, OSError, AudioDecoderUnavailable) as error:
        _fail(str(error))  # ValueError: e.g. a layer out of range
    done = f"Wrote features of {len(yielded)} file(s) to {output}"
    typer.echo(done + (f"; skipped {len(skipped)} file(s), named above." if skipped else ""))


@app.command()
def info(model_dir: Annotated[Path, typer.Argument(help="A folder written by save_pretrained.")]) -> None:
    """Print a saved model's architecture, parameter count and layer-sharing pattern."""
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError
    from transformers import AutoConfig

    from .hub.model_cards import measure_saved_model, sharing_pattern
    from .models.configuration_alhubert import AlHubertConfig

    if not (model_dir / "config.json").is_file():
        _fail(f"{model_dir} has no config.json; give a folder written by save_pretrained.")
    try:
        config = AutoConfig.from_pretrained(model_dir)
        measured = measure_saved_model(model_dir)
    except (OSError, ValueError, KeyError, SafetensorError, StrictDataclassError) as error:
        if isinstance(error, SafetensorError):
            _fail(_load_error(str(model_dir), error))
        _fail(f"Cannot read the model in {model_dir}: {error}")
    if not isinstance(config, AlHubertConfig):
        _fail(
            f"{model_dir} holds a {type(config).__name__} (model_type {config.model_type!r}), not an ALHuBERT model."
        )
    try:
        refuse_missing_weights(missing_saved_weights(model_dir, config), config, str(model_dir))
    except (ValueError, SafetensorError) as error:
        _fail(str(error))
    lines = {
        "Architecture": ", ".join(config.architectures or ["AlHubertModel"]),
        "Distinct layers": config.num_hidden_groups,
        "Layer applications": config.num_hidden_layers,
        "Sharing": f"{config.layer_sharing}: {sharing_pattern(config)}",
        "Hidden size / heads / FFN": (
            f"{config.hidden_size} / {config.num_attention_heads} / {config.intermediate_size}"
        ),
        "Layer norm": "pre-LN (stable)" if config.do_stable_layer_norm else "post-LN",
        "Feature encoder": f"{len(config.conv_dim)} convolutions, {config.conv_dim[-1]} channels, "
        f"{config.feat_extract_norm} norm, receptive field {config.receptive_field} samples",
        "Parameters": f"{measured['parameters']:,}",
        "Weights size": f"{measured['file_size_bytes']:,} bytes ({measured['file_size_bytes'] / 2**20:.1f} MiB)",
    }
    width = max(map(len, lines))
    for name, value in lines.items():
        typer.echo(f"{name:<{width}}  {value}")


# Commands whose arguments (and --help) belong to an HfArgumentParser in their module: Typer passes them through.
FORWARDED = {
    "distill": (
        "alhubert.training.run_distillation",
        "cli",
        "Distil a HuBERT teacher into an ALHuBERT student: alhubert distill CONFIG (CONFIG: small, "
        "middle, large, demo or a YAML/JSON file).",
    ),
    "finetune-ctc": (
        "alhubert.training.run_finetune_ctc",
        "cli",
        "Fine-tune for speech recognition (character CTC) and evaluate WER/CER.",
    ),
    "finetune-classification": (
        "alhubert.training.run_finetune_classification",
        "cli",
        "Fine-tune for audio classification and evaluate accuracy.",
    ),
    "kmeans-targets": (
        "alhubert.training.kmeans_targets",
        "cli",
        "HuBERT pre-training targets: k-means on MFCC or on a model's hidden states, one label per frame.",
    ),
    "pretrain-hubert": (
        "alhubert.training.run_pretrain_hubert",
        "cli",
        "Pre-train a HuBERT encoder (masked prediction of k-means targets) into a HubertModel folder.",
    ),
    "convert": (
        "alhubert.original.run_conversion",
        "cli",
        "Convert an original DistilALHuBERT checkpoint (S3PRL .ckpt) into a model folder.",
    ),
    "push-to-hub": (
        "alhubert.hub.run_upload",
        "main",
        "Check, stage and upload a saved model folder (or `space`: the browser demo) to the Hub.",
    ),
}


def _forwarding_command(name: str, module: str, function: str, summary: str):
    def command(context: typer.Context):
        import importlib

        try:
            entry = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError as error:  # e.g. `pip install alhubert` without the training extra
            _fail(f'alhubert {name} needs {error.name}, which is not installed: pip install "alhubert[train]".')
        entry(list(context.args))

    command.__doc__ = f"{summary} Flags: alhubert {name} --help."
    app.command(
        name,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )(command)


for _name, (_module, _function, _summary) in FORWARDED.items():
    _forwarding_command(_name, _module, _function, _summary)


export_app = typer.Typer(help="Export a model for other runtimes.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx(
    model: Annotated[str, typer.Argument(help="ALHuBERT or HuBERT model folder or Hub model id (CTC heads too).")],
    output_dir: Annotated[
        Path,
        typer.Argument(
            help="New folder for onnx/model.onnx and the config and preprocessing files; the model's own "
            "folder adds only onnx/ to it."
        ),
    ],
    quantize: Annotated[
        str | None, typer.Option(help="'int8': also write onnx/model_quantized.onnx (int8 weights).")
    ] = None,
    all_hidden_states: Annotated[
        bool,
        typer.Option(
            help="Add the output hidden_states: every hidden state, stacked (layers+1, batch, frames, hidden)."
        ),
    ] = False,
    opset: Annotated[int | None, typer.Option(help="ONNX opset, 18 to 24 (default 18).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export.")] = False,
) -> None:
    """Export a model to ONNX (and int8) for ONNX Runtime, in the Hub's layout for ONNX weights."""
    try:
        from .inference import onnx_export

        opset = onnx_export.DEFAULT_OPSET if opset is None else opset
        files = onnx_export.export_onnx(
            model, output_dir, quantize=quantize, all_hidden_states=all_hidden_states, opset=opset, overwrite=overwrite
        )
    except (FileExistsError, ValueError, ImportError) as error:
        _fail(str(error))
    for kind, path in files.items():
        typer.echo(f"Wrote {path} ({kind}, {path.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    """Entry point of the `alhubert` console script."""
    app()


if __name__ == "__main__":
    main()
