# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The `alhubert` command line: `alhubert extract` (features from audio files), `alhubert info` (a model's shape),
`alhubert export onnx` (ONNX and int8 files for ONNX Runtime), and the training, conversion and upload commands
(`distill`, `finetune-ctc`, `finetune-classification`, `convert`, `push-to-hub`), which forward their arguments to the
HfArgumentParser-based `main(argv)` of their module.

Built with Typer, like Transformers' own `transformers` command.
"""

import os
import tempfile
import warnings
from pathlib import Path
from typing import Annotated

import typer


app = typer.Typer(
    help="ALHuBERT command line: extract speech features, inspect saved models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class CommandError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _fail(message: str):
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def load_encoder(model_name_or_path: str, device: str | None = None):
    """Load a speech encoder (`AutoModel`) and its feature extractor from a local folder or a Hub model id."""
    import torch
    import transformers
    from transformers import AutoFeatureExtractor, AutoModel  # ALHuBERT is registered on `import alhubert`

    transformers.utils.logging.disable_progress_bar()  # quiet: the command shows its own progress over the files
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
        model = AutoModel.from_pretrained(model_name_or_path)
    except (OSError, ValueError) as error:
        hint = "" if Path(model_name_or_path).is_dir() else " It is neither a local folder nor a reachable Hub model id."
        raise CommandError(f"Cannot load the model {model_name_or_path!r}:{hint} {error}") from error
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), feature_extractor


def _output_plan(audio: list[Path], output: Path, overwrite: bool) -> dict[Path, str]:
    """Map each audio file to its key in the output (safetensors / npy) or its `.npy` file (output folder)."""
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
        plan = {path: str(output / f"{path.stem}.npy") for path in audio}
        if len(set(plan.values())) != len(plan):
            raise CommandError("Several audio files share a name; write them to a .safetensors file, not a folder.")
        files = [Path(name) for name in plan.values()]
    existing = [name for name in files if name.exists()]
    if existing and not overwrite:
        raise CommandError(f"{existing[0]} already exists; pass --overwrite to replace it.")
    return plan


def _save_atomically(path: Path, write):
    """Write with `write(temporary_path)` then move into place, so an interrupted run leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _audio_durations(audio: list[Path]) -> list[float]:
    from ..models.audio import audio_duration

    durations = []
    for path in audio:
        if not path.is_file():
            raise CommandError(f"Audio file not found: {path}")
        try:
            durations.append(audio_duration(path))
        except ValueError as error:
            raise CommandError(f"Cannot read audio file {path}: {error}") from None
    return durations


@app.command()
def extract(
    audio: Annotated[list[Path], typer.Argument(help="Audio files (WAV, FLAC, OGG, MP3; other formats with torchcodec); 16 kHz mono.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model folder or Hub model id.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o",
            help="A .safetensors file (one entry per audio file, keyed by its path), a .npy file (one audio file) "
            "or a folder (one <name>.npy per audio file).",
        ),
    ],
    layer: Annotated[
        int | None,
        typer.Option(help="hidden_states index: 0 = encoder input, k = output of layer application k. "
                          "Default: the model's last_hidden_state."),
    ] = None,
    chunk_length_s: Annotated[
        float, typer.Option(help="Longest audio (seconds) the model sees at once; longer files go in windows.")
    ] = 30.0,
    stride_length_s: Annotated[
        float, typer.Option(help="Context (seconds) on each side of a window whose frames are dropped when stitching.")
    ] = 5.0,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass (grouped by length).")] = 8,
    device: Annotated[str | None, typer.Option(help="Torch device (default: cuda when available, else cpu).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
):
    """Extract one layer's features from audio files, in bounded memory for long recordings."""
    import numpy as np
    from safetensors.numpy import save_file
    from tqdm.auto import tqdm

    from .long_audio import LongAudioFeatureExtractor
    from ..models.audio import load_audio

    try:
        destinations = _output_plan(audio, output, overwrite)
        durations = _audio_durations(audio)
        encoder, feature_extractor = load_encoder(model, device)
        extractor = LongAudioFeatureExtractor(
            encoder, feature_extractor, layer, chunk_length_s, stride_length_s, batch_size
        )
        order = sorted(range(len(audio)), key=durations.__getitem__)  # similar lengths share batches
        waveforms = (load_audio(str(audio[index]), feature_extractor.sampling_rate) for index in order)
        features = {}
        with tqdm(total=len(audio), unit="file", desc="Extracting") as progress:
            for position, array in extractor(waveforms):
                path = audio[order[position]]
                if output.suffix == ".safetensors":
                    features[destinations[path]] = array
                else:
                    _save_atomically(Path(destinations[path]), lambda name, a=array: np.save(name, a))
                progress.update(1)
        if output.suffix == ".safetensors":
            metadata = {"model": model, "layer": "last_hidden_state" if layer is None else str(layer)}
            _save_atomically(output, lambda name: save_file(features, name, metadata=metadata))
    except (CommandError, FileNotFoundError, ValueError) as error:  # ValueError: e.g. a layer out of range
        _fail(str(error))
    typer.echo(f"Wrote features of {len(audio)} file(s) to {output}")


@app.command()
def info(model_dir: Annotated[Path, typer.Argument(help="A folder written by save_pretrained.")]):
    """Print a saved model's architecture, parameter count and layer-sharing pattern."""
    from transformers import AutoConfig

    from ..models.configuration_alhubert import AlHubertConfig
    from ..hub.model_cards import measure_saved_model, sharing_pattern

    if not (model_dir / "config.json").is_file():
        _fail(f"{model_dir} has no config.json; give a folder written by save_pretrained.")
    try:
        config = AutoConfig.from_pretrained(model_dir)
        measured = measure_saved_model(model_dir)
    except (OSError, ValueError) as error:
        _fail(f"Cannot read the model in {model_dir}: {error}")
    if not isinstance(config, AlHubertConfig):
        _fail(f"{model_dir} holds a {type(config).__name__} (model_type {config.model_type!r}), not an ALHuBERT model.")
    lines = {
        "Architecture": ", ".join(config.architectures or ["AlHubertModel"]),
        "Distinct layers": config.num_hidden_groups,
        "Layer applications": config.num_hidden_layers,
        "Sharing": f"{config.layer_sharing}: {sharing_pattern(config)}",
        "Hidden size / heads / FFN": f"{config.hidden_size} / {config.num_attention_heads} / {config.intermediate_size}",
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
    "distill": ("alhubert.training.run_distillation", "main",
                "Distil a HuBERT teacher into an ALHuBERT student: alhubert distill CONFIG (CONFIG: small, "
                "middle, large, demo or a YAML/JSON file)."),
    "finetune-ctc": ("alhubert.training.run_finetune_ctc", "main",
                     "Fine-tune for speech recognition (character CTC) and evaluate WER/CER."),
    "finetune-classification": ("alhubert.training.run_finetune_classification", "main",
                                "Fine-tune for audio classification and evaluate accuracy."),
    "convert": ("alhubert.original.run_conversion", "cli",
                "Convert an original DistilALHuBERT checkpoint (S3PRL .ckpt) into a model folder."),
    "push-to-hub": ("alhubert.hub.run_upload", "main", "Check, stage and upload a saved model folder to the Hub."),
}


def _forwarding_command(name: str, module: str, function: str, summary: str):
    def command(context: typer.Context):
        import importlib

        try:
            entry = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError as error:  # e.g. `pip install alhubert` without the training extra
            _fail(f"alhubert {name} needs {error.name}, which is not installed: pip install \"alhubert[train]\".")
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
        typer.Argument(help="New folder for onnx/model.onnx and the config and preprocessing files; the model's own "
                            "folder adds only onnx/ to it."),
    ],
    quantize: Annotated[
        str | None, typer.Option(help="'int8': also write onnx/model_quantized.onnx (int8 weights).")
    ] = None,
    all_hidden_states: Annotated[
        bool, typer.Option(help="Add the output hidden_states: every hidden state, stacked (layers+1, batch, frames, "
                                "hidden).")
    ] = False,
    opset: Annotated[int | None, typer.Option(help="ONNX opset, 18 to 24 (default 18).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export.")] = False,
):
    """Export a model to ONNX (and int8) for ONNX Runtime, in the Hub's layout for ONNX weights."""
    try:
        from . import onnx_export
    except ImportError as error:
        _fail(f"ONNX export needs the onnx extra (pip install 'alhubert[onnx]'): {error}")
    try:
        files = onnx_export.export_onnx(
            model, output_dir, quantize=quantize, all_hidden_states=all_hidden_states,
            opset=onnx_export.DEFAULT_OPSET if opset is None else opset, overwrite=overwrite,
        )
    except (FileExistsError, ValueError, ImportError) as error:
        _fail(str(error))
    for kind, path in files.items():
        typer.echo(f"Wrote {path} ({kind}, {path.stat().st_size / 1e6:.1f} MB)")


def main():
    """Entry point of the `alhubert` console script."""
    app()


if __name__ == "__main__":
    main()
