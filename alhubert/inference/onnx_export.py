# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""ONNX export of ALHuBERT (and HuBERT) models, with each shared layer stored once, and int8 quantization.

`export_onnx` writes the Hub's layout for ONNX weights. The graph (torch.onnx's dynamo exporter, then the passes
below) has the inputs `input_values` (float32, batch x samples of 16 kHz audio) and `attention_mask` (int64, same
shape, 1 for real samples), dynamic in batch and length, and the output `last_hidden_state` (`logits` for CTC and
classification models), plus with `all_hidden_states=True` the output `hidden_states`: every hidden state stacked,
of shape (num_hidden_layers + 1, batch, frames, hidden_size).
"""

import contextlib
import importlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn.utils import parametrize

from ..models.configuration_alhubert import receptive_field
from ..models.fast_cpu_path import use_fast_cpu_path
from ..utils.errors import one_line
from ..utils.files import PREPROCESSING_FILES, check_replaceable_folder, make_staging_folder, replace_folder
from ..utils.model_checks import refuse_missing_weights, refuse_non_boolean_flags, refuse_non_finite_outputs


if TYPE_CHECKING:
    import onnx_ir


ONNX_FOLDER = "onnx"
MODEL_FILE = "model.onnx"
QUANTIZED_MODEL_FILE = "model_quantized.onnx"
DEFAULT_OPSET = 18
# The dynamo exporter writes opset 18 and newer; each of 18 to 24 was checked to export and run (fp32 and int8)
# in ONNX Runtime 1.32.
SUPPORTED_OPSETS = range(18, 25)
SUPPORTED_MODEL_TYPES = ("alhubert", "hubert")
QUANTIZATION_MODES = ("int8",)
# Copied next to the ONNX files when the model has them, so that the folder can be used (and uploaded) on its own.
SIDE_FILES = ("config.json", *PREPROCESSING_FILES)
# Everything an export writes into its folder.
EXPORTED_FILES = (*SIDE_FILES, f"{ONNX_FOLDER}/{MODEL_FILE}", f"{ONNX_FOLDER}/{QUANTIZED_MODEL_FILE}")


def _load_for_export(model_name_or_path: str):
    """The model (in eval mode, ready for export) and the name of its main output."""
    from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForCTC

    import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)

    local = Path(model_name_or_path)
    if local.is_dir() and not (local / "config.json").is_file():
        raise ValueError(f"{local} has no config.json; give a folder written by save_pretrained or a Hub model id.")
    try:
        config = AutoConfig.from_pretrained(model_name_or_path)
    except (OSError, ValueError) as error:
        hint = "" if local.is_dir() else " It is neither a local folder nor a reachable Hub model id."
        raise ValueError(f"Cannot load the model {model_name_or_path!r}:{hint} {one_line(error)}") from error
    if config.model_type == "alhubert-superb":
        raise ValueError(
            f"{model_name_or_path} is a SUPERB model (frozen encoder, weighted layer sum and BiLSTM head), which is "
            "not exported to ONNX; export a linear-head CTC model (alhubert finetune-ctc --recipe full) or the "
            "encoder."
        )
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{model_name_or_path} holds a {type(config).__name__} (model_type {config.model_type!r}), "
            "not an ALHuBERT or HuBERT model."
        )
    architecture = (config.architectures or ["Model"])[0]
    if architecture.endswith("ForCTC"):
        auto_class, output_name = AutoModelForCTC, "logits"
    elif architecture.endswith("ForSequenceClassification"):
        auto_class, output_name = AutoModelForAudioClassification, "logits"
    else:
        auto_class, output_name = AutoModel, "last_hidden_state"
    try:
        # eager attention exports as plain MatMul/Softmax; the SDPA decomposition adds NaN guards per attention
        # score (about 10 % slower in ONNX Runtime on the small preset, same outputs to 2e-6)
        model, loading = auto_class.from_pretrained(
            model_name_or_path, attn_implementation="eager", output_loading_info=True
        )
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot load the weights of {model_name_or_path!r}: {one_line(error)}") from error
    refuse_missing_weights(loading["missing_keys"], config, model_name_or_path)
    model.eval()
    refuse_non_finite_outputs(model, model_name_or_path)  # huge finite weights would export a NaN model
    use_fast_cpu_path(model, enabled=False)  # HuBERT's plain convolutions: the CPU fast path is PyTorch-specific
    for module in list(model.modules()):  # a list: removing a parametrization changes the module tree
        # the positional convolution's weight norm becomes a plain weight (one initializer that the quantizer sees)
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model, output_name


class _OnnxExportModule(torch.nn.Module):
    """What is exported: tensors in, the named output (and optionally all hidden states, stacked) out."""

    def __init__(self, model, output_name: str, all_hidden_states: bool):
        super().__init__()
        self.model = model
        self.output_name = output_name
        self.all_hidden_states = all_hidden_states

    def forward(self, input_values, attention_mask):
        outputs = self.model(
            input_values, attention_mask=attention_mask, output_hidden_states=self.all_hidden_states, return_dict=True
        )
        if self.all_hidden_states:
            return outputs[self.output_name], torch.stack(outputs.hidden_states)
        return outputs[self.output_name]


def fold_weight_transposes(model: "onnx_ir.Model") -> None:
    """Replace every `Transpose` of an initializer in an `onnx_ir.Model` by one transposed initializer, in place: left
    alone, the exporter's per-call `Transpose` of a linear layer's weight hides it from ONNX Runtime's quantizer, and
    constant folding would copy a shared weight once per layer application."""
    import onnx_ir as ir

    graph = model.graph
    transposed = {}
    for node in list(graph):
        source = node.inputs[0] if node.op_type == "Transpose" and node.domain in ("", "ai.onnx") else None
        if source is None or not source.is_initializer() or source.const_value is None:
            continue
        perm = node.attributes.get_ints("perm", None)
        key = (source.name, None if perm is None else tuple(perm))
        if key not in transposed:
            array = np.ascontiguousarray(source.const_value.numpy().transpose(perm))
            reverse = perm is None or list(perm) == list(range(len(perm)))[::-1]
            name = f"{source.name}.transposed" if reverse else f"{source.name}.perm_{'_'.join(map(str, perm))}"
            transposed[key] = ir.val(name, const_value=ir.tensor(array, name=name))
            graph.register_initializer(transposed[key])
        node.outputs[0].replace_all_uses_with(transposed[key])
        graph.remove(node, safe=True)


def store_weights_once(model: "onnx_ir.Model") -> None:
    """Merge identical initializers of an `onnx_ir.Model`, drop unused ones and the per-node stack traces, in place."""
    from onnx_ir.passes import common

    common.RemoveUnusedNodesPass()(model)
    common.DeduplicateInitializersPass(size_limit=2**62)(model)
    common.ClearMetadataAndDocStringPass()(model)  # the exporter's stack traces are most of a small model's file


def quantize_int8(model_path: str | os.PathLike, quantized_path: str | os.PathLike) -> None:
    """int8 weights for every MatMul and Conv whose weight is an initializer (each shared weight quantized once).

    MatMuls get ONNX Runtime's dynamic quantization (int8 weights per output column, uint8 activations at run time).
    Convolutions get weight-only int8 (per output channel, dequantized to float32 in the graph): ONNX Runtime's
    dynamic `ConvInteger` quantizes raw audio and the feature encoder's activations too coarsely (mean cosine to
    float32 below 0.9 on speech)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model_path,
        quantized_path,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        extra_options={"MatMulConstBOnly": True},
    )
    model = onnx.load(quantized_path)
    graph = model.graph
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    dequantized, new_nodes = {}, []
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in initializers:
            continue
        name = node.input[1]
        if name not in dequantized:
            weight = numpy_helper.to_array(initializers[name])
            scale = np.abs(weight).reshape(weight.shape[0], -1).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            broadcast = scale.reshape(-1, *([1] * (weight.ndim - 1)))
            inputs = {  # the inputs of DequantizeLinear, in its order
                f"{name}_quantized": np.clip(np.round(weight / broadcast), -127, 127).astype(np.int8),
                f"{name}_scale": scale.astype(np.float32),
                f"{name}_zero_point": np.zeros_like(scale, dtype=np.int8),
            }
            graph.initializer.remove(initializers[name])
            graph.initializer.extend(numpy_helper.from_array(array, key) for key, array in inputs.items())
            dequantized[name] = f"{name}_dequantized"
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear", list(inputs), [dequantized[name]], name=f"{name}_DequantizeLinear", axis=0
                )
            )
        node.input[1] = dequantized[name]
    for position, node in enumerate(new_nodes):  # they read only initializers: first in topological order
        graph.node.insert(position, node)
    onnx.save(model, quantized_path)


def _check_arguments(target: Path, quantize, opset: int, overwrite: bool, in_place: bool):
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(
            f"Unsupported opset {opset}; choose one from {SUPPORTED_OPSETS.start} to {SUPPORTED_OPSETS.stop - 1} "
            f"(default {DEFAULT_OPSET})."
        )
    if quantize is not None and quantize not in QUANTIZATION_MODES:
        raise ValueError(f"Unsupported quantization {quantize!r}; choose one of {QUANTIZATION_MODES}.")
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder; choose a new folder.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{target} already exists and is not empty; pass --overwrite (overwrite=True from Python) to replace it."
        )
    # an export (or the onnx/ folder of an in-place export) is replaced; a folder of the user's files never is
    written = (MODEL_FILE, QUANTIZED_MODEL_FILE) if in_place else EXPORTED_FILES
    check_replaceable_folder(target, written, None if in_place else SUPPORTED_MODEL_TYPES, "alhubert export onnx")


def _copy_side_files(model_name_or_path: str, destination: Path) -> None:
    """Copy the config and the feature extractor / tokenizer / processor files that exist (local folder or Hub)."""
    from transformers.utils import cached_file

    for name in SIDE_FILES:
        path = cached_file(
            model_name_or_path,
            name,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if path is not None:
            if name == "preprocessor_config.json":  # the ONNX example reads its switches: JSON booleans only
                settings = json.loads(Path(path).read_text(encoding="utf-8"))
                refuse_non_boolean_flags(SimpleNamespace(**settings), model_name_or_path)
            shutil.copyfile(path, destination / name)


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's and the quantizer's warnings (missing torchvision, pre-processing advice), their logs
    and Transformers' weight-loading progress bar."""
    from transformers.utils import logging as transformers_logging

    previous = logging.root.manager.disable
    progress_bar = transformers_logging.is_progress_bar_enabled()
    logging.disable(logging.WARNING)
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        if progress_bar:
            transformers_logging.enable_progress_bar()


def _export_graph(model, output_name: str, all_hidden_states: bool, opset: int, path: Path):
    module = _OnnxExportModule(model, output_name, all_hidden_states)
    example = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    dynamic = {0: torch.export.Dim("batch_size"), 1: torch.export.Dim("samples", min=receptive_field(model.config))}
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example, torch.ones_like(example, dtype=torch.long)),
            input_names=["input_values", "attention_mask"],
            output_names=[output_name] + (["hidden_states"] if all_hidden_states else []),
            dynamic_shapes={"input_values": dynamic, "attention_mask": dynamic},
            opset_version=opset,
            dynamo=True,
            optimize=False,  # after fold_weight_transposes, so that constant folding copies no shared weight
            verbose=False,
        )
    fold_weight_transposes(program.model)
    program.optimize()
    store_weights_once(program.model)
    program.save(path, external_data=False)


def export_onnx(
    model_name_or_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    quantize: str | None = None,
    all_hidden_states: bool = False,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Export a saved ALHuBERT (or HuBERT) model to ONNX; returns the written ONNX files by kind (`fp32`, `int8`).

    `output_dir` gets `onnx/model.onnx` (and with `quantize="int8"`, `onnx/model_quantized.onnx`) plus copies of the
    model's config and preprocessing files; the model's own folder gets only `onnx/`, to be uploaded with it. The
    export is built under a temporary name and renamed when complete: a failure leaves no partial export. Raises
    `ValueError` (unloadable or unsupported model, bad option), `FileExistsError` (a non-empty target without
    `overwrite`) or `ImportError` (the `onnx` extra is not installed).
    """
    for name in ("onnx", "onnxscript", "onnxruntime"):  # what torch.onnx's exporter and the int8 step import
        try:
            importlib.import_module(name)
        except ImportError:
            raise ImportError(
                f'ONNX export needs {name}, from the onnx extra: pip install "alhubert[onnx]".'
            ) from None
    output_dir = Path(output_dir)
    local_model = Path(str(model_name_or_path))
    in_place = local_model.is_dir() and output_dir.exists() and output_dir.resolve() == local_model.resolve()
    target = output_dir / ONNX_FOLDER if in_place else output_dir
    if not in_place and local_model.is_dir() and output_dir.resolve() in local_model.resolve().parents:
        raise ValueError(f"{output_dir} contains the model {local_model}; choose another output folder.")
    _check_arguments(target, quantize, opset, overwrite, in_place)
    with _quiet():
        model, output_name = _load_for_export(str(model_name_or_path))

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging_folder(target)
    try:
        onnx_dir = staging if in_place else staging / ONNX_FOLDER
        if not in_place:
            _copy_side_files(str(model_name_or_path), staging)
            onnx_dir.mkdir()
        files = {"fp32": onnx_dir / MODEL_FILE}
        with _quiet():
            _export_graph(model, output_name, all_hidden_states, opset, files["fp32"])
            if quantize == "int8":
                files["int8"] = onnx_dir / QUANTIZED_MODEL_FILE
                quantize_int8(files["fp32"], files["int8"])
        # modes per the umask; an old export is replaced only once this one is complete
        replace_folder(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return {kind: output_dir / ONNX_FOLDER / path.name for kind, path in files.items()}


__all__ = ["export_onnx", "fold_weight_transposes", "quantize_int8", "store_weights_once"]
