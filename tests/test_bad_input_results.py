"""Inputs that once gave silently wrong results: weights that overflow to NaN features, a model folder missing a
layer's weights, booleans written as strings, NaN audio among good files, SpecAugment in UpstreamExpert's training
mode. Each now errors with one line naming the file or setting (or, for UpstreamExpert, behaves as the original).
One row per case."""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from original_checkpoints import random_original_checkpoint
from safetensors.torch import load_file, save_file
from test_bad_input_commands import check_command_outcome
from transformers import pipeline
from typer.testing import CliRunner

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.cli import app
from alhubert.models.audio import AudioRefused
from alhubert.original import run_conversion
from alhubert.original.conversion import config_from_original
from alhubert.original.upstream import UpstreamExpert


CONFIG = tiny_config_kwargs(num_hidden_layers=4, num_hidden_groups=2, num_attention_heads=2)
CONV_SPEC = "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "onnx_inference.py"


def times_1e30(model):
    """Finite weights that overflow float32 in the first attention products (every value finite, x 1e30)."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("encoder.layers."):
                parameter.mul_(1e30)
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    torch.manual_seed(0)
    model = AlHubertModel(AlHubertConfig(**CONFIG)).eval()
    model.save_pretrained(root / "model")
    times_1e30(model).save_pretrained(root / "huge-weights")
    shutil.copytree(root / "model", root / "missing-layer")
    weights = load_file(root / "missing-layer" / "model.safetensors")
    save_file(
        {key: value for key, value in weights.items() if not key.startswith("encoder.layers.1.")},
        root / "missing-layer" / "model.safetensors",
        metadata={"format": "pt"},
    )
    shutil.copytree(root / "model", root / "string-flag")
    settings = json.loads((root / "string-flag" / "preprocessor_config.json").read_text())
    (root / "string-flag" / "preprocessor_config.json").write_text(json.dumps({**settings, "do_normalize": "no"}))
    (root / "audio").mkdir()
    rng = np.random.default_rng(0)
    soundfile.write(root / "audio" / "good.wav", 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    waveform = 0.1 * rng.standard_normal(16000).astype(np.float32)
    waveform[5000:5010] = np.nan
    soundfile.write(root / "audio" / "nan.wav", waveform, 16000, subtype="FLOAT")
    return root


# --- the commands ---------------------------------------------------------------------------------------------


@dataclass
class CommandRow:
    id: str
    args: Callable  # args(files, out) -> argv of `alhubert`
    code: int
    patterns: tuple  # the error line (code 1) or stdout (code 0)
    written: tuple = ()  # what exists under the test folder afterwards
    warnings: tuple = ()
    out: str = "out"


def extract(*names, model="model", extra=()):
    return lambda files, out: [
        "extract",
        *[str(files / "audio" / name) for name in names],
        "-m",
        str(files / model),
        "-o",
        str(out),
        *extra,
    ]


COMMAND_ROWS = [
    CommandRow(
        "extract-huge-weights-safetensors",
        extract("good.wav", model="huge-weights"),
        1,
        (r"features of \S+good\.wav are NaN or infinite", r"huge-weights is damaged", "not saved"),
        out="out.safetensors",
    ),
    CommandRow(
        "extract-huge-weights-folder",
        extract("good.wav", model="huge-weights"),
        1,
        (r"good\.wav are NaN or infinite",),
    ),
    CommandRow(
        "extract-good-and-nan-files",
        extract("good.wav", "nan.wav"),
        0,
        (r"Wrote features of 1 file\(s\)", r"skipped 1 file"),
        written=("out",),
        warnings=(r"skipping \S+nan\.wav: \S+nan\.wav holds NaN or infinite samples",),
    ),
    CommandRow(
        "extract-nan-file-strict",
        extract("good.wav", "nan.wav", extra=("--strict",)),
        1,
        (r"nan\.wav holds NaN or infinite samples", "--strict"),
    ),
    CommandRow(
        "extract-missing-layer",
        extract("good.wav", model="missing-layer"),
        1,
        (r"lacks \d+ weight\(s\)", r"encoder\.layers\.1\.", "save or download the model again"),
    ),
    CommandRow(
        "info-missing-layer",
        lambda files, out: ["info", str(files / "missing-layer")],
        1,
        (r"lacks \d+ weight\(s\)", r"encoder\.layers\.1\."),
    ),
    CommandRow(
        "export-missing-layer",
        lambda files, out: ["export", "onnx", str(files / "missing-layer"), str(out)],
        1,
        (r"lacks \d+ weight\(s\)",),
    ),
    CommandRow(
        "extract-do-normalize-string",
        extract("good.wav", model="string-flag"),
        1,
        (r"preprocessor_config\.json of \S+string-flag sets do_normalize to 'no'", "fix the file"),
    ),
    CommandRow(
        "export-do-normalize-string",
        lambda files, out: ["export", "onnx", str(files / "string-flag"), str(out)],
        1,
        (r"sets do_normalize to 'no', not true or false",),
    ),
    CommandRow(
        "export-huge-weights",
        lambda files, out: ["export", "onnx", str(files / "huge-weights"), str(out)],
        1,
        ("gives NaN or infinite outputs", r"largest \|weight\| \S+e\+\d\d", "earlier checkpoint"),
    ),
]


@pytest.mark.parametrize("row", COMMAND_ROWS, ids=[row.id for row in COMMAND_ROWS])
def test_command(row, files, tmp_path):
    out = tmp_path / row.out
    result = CliRunner().invoke(app, row.args(files, out))
    check_command_outcome(result, row.code, row.patterns, row.warnings)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(row.written)
    if row.id == "extract-good-and-nan-files":
        assert sorted(path.name for path in out.iterdir()) == ["good.npy"]
        assert np.isfinite(np.load(out / "good.npy")).all()


def test_converter_refuses_weights_that_overflow(tmp_path, capsys):
    checkpoint, _ = random_original_checkpoint(AlHubertConfig(**CONFIG), CONV_SPEC)
    for key, value in checkpoint["alhubert"].items():
        if key.startswith("encoder.layers."):
            value.mul_(1e30)
    torch.save(checkpoint, tmp_path / "huge.ckpt")
    with pytest.raises(SystemExit) as exit:
        run_conversion.cli(["--checkpoint", str(tmp_path / "huge.ckpt"), "--output_dir", str(tmp_path / "out")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert exit.value.code == 1 and len(lines) == 1
    assert re.search(
        r"huge\.ckpt gives NaN or infinite outputs .*largest \|weight\| [\d.]+e\+\d\d, in encoder\.", lines[0]
    ), lines[0]
    assert not (tmp_path / "out").exists()


# --- the Python interfaces --------------------------------------------------------------------------------------


def run_pipeline(model, audio):
    def run(files):
        return pipeline("audio-feature-extraction", model=str(files / model))(str(files / "audio" / audio))

    return run


def converted_setting(**settings):
    def run(files):
        original = dict(random_original_checkpoint(AlHubertConfig(**CONFIG), CONV_SPEC)[0]["Config"]["alhubert"])
        config = config_from_original({**original, **settings})
        return config.do_stable_layer_norm, config.do_normalize, config.conv_bias

    return run


def upstream_train_equals_eval(**settings):
    """UpstreamExpert in training mode (S3PRL's -f) gives the eval-mode features: no SpecAugment (dropout off)."""

    def run(files):
        config = AlHubertConfig(**{**CONFIG, **settings})
        checkpoint, _ = random_original_checkpoint(config, CONV_SPEC)
        checkpoint["Config"]["alhubert"].update(
            mask_prob=settings.get("mask_time_prob", 0.0),
            mask_channel_prob=settings.get("mask_feature_prob", 0.0),
            dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
            dropout_input=0.0,
            encoder_layerdrop=0.0,
        )
        torch.save(checkpoint, files / "masking.ckpt")
        expert = UpstreamExpert(str(files / "masking.ckpt"))
        wavs = [torch.randn(16000, generator=torch.Generator().manual_seed(1)), torch.randn(12000)]
        with torch.no_grad():
            evaluated = expert.eval()(wavs)["hidden_states"]
            trained = expert.train()(wavs)["hidden_states"]
        assert expert.model.training and expert.model.config.mask_time_prob == settings.get("mask_time_prob", 0.0)
        return evaluated, trained

    return run


def same_features(value):
    evaluated, trained = value
    assert len(evaluated) == 4
    for a, b in zip(evaluated, trained):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@dataclass
class Row:
    id: str
    run: Callable  # run(files)
    expect: Callable | tuple  # check(value) or (error type, patterns)


ROWS = [
    Row(
        "pipeline-huge-weights",
        run_pipeline("huge-weights", "good.wav"),
        (ValueError, (r"features of \S+good\.wav are NaN or infinite", r"huge-weights is damaged")),
    ),
    Row(
        "pipeline-nan-file",
        run_pipeline("model", "nan.wav"),
        (AudioRefused, (r"\S+nan\.wav holds NaN or infinite samples", "re-encode")),
    ),
    Row(
        "original-layer-norm-first-string-False",
        converted_setting(layer_norm_first="False"),
        lambda value: value[0] is False,
    ),
    Row("original-normalize-string-false", converted_setting(normalize="false"), lambda value: value[1] is False),
    Row("original-conv-bias-string-True", converted_setting(conv_bias="True"), lambda value: value[2] is True),
    Row(
        "original-normalize-unknown-string",
        converted_setting(normalize="maybe"),
        (ValueError, (r"\['normalize'\] must be a boolean", "'maybe'")),
    ),
    Row(
        "original-layer-norm-first-number-2",
        converted_setting(layer_norm_first=2),
        (ValueError, (r"\['layer_norm_first'\] must be a boolean",)),
    ),
    Row("upstream-train-mode-never-masks-time", upstream_train_equals_eval(mask_time_prob=0.65), same_features),
    Row(
        "upstream-train-mode-never-masks-features",
        upstream_train_equals_eval(mask_time_prob=0.65, mask_feature_prob=0.5),
        same_features,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_python_interface(row, files):
    if isinstance(row.expect, tuple):
        error, patterns = row.expect
        with pytest.raises(error) as raised:
            row.run(files)
        message = str(raised.value)
        assert "\n" not in message
        for pattern in patterns:
            assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    else:
        assert row.expect(row.run(files)) is not False


# --- examples/onnx_inference.py (ONNX Runtime only) -------------------------------------------------------------


def overflowing_onnx_export(folder: Path):
    """An export folder whose graph multiplies the audio by 1e30 twice (finite constants, infinite outputs)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Mul", ["input_values", "scale"], ["scaled"]),
        helper.make_node("Mul", ["scaled", "scale"], ["twice"]),
        helper.make_node("Unsqueeze", ["twice", "axes"], ["last_hidden_state"]),
    ]
    graph = helper.make_graph(
        nodes,
        "overflow",
        [
            helper.make_tensor_value_info("input_values", TensorProto.FLOAT, [1, "samples"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, "samples"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, "samples", 1])],
        [
            numpy_helper.from_array(np.array(1e30, np.float32), "scale"),
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
        ],
    )
    (folder / "onnx").mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), folder / "onnx" / "model.onnx")
    (folder / "preprocessor_config.json").write_text(json.dumps({"sampling_rate": 16000, "do_normalize": False}))
    return folder


def with_preprocessor(**settings):
    def prepare(folder):
        overflowing_onnx_export(folder)
        (folder / "preprocessor_config.json").write_text(json.dumps({"sampling_rate": 16000, **settings}))
        return folder

    return prepare


@dataclass
class ExampleRow:
    id: str
    prepare: Callable  # prepare(export folder)
    audio: str
    patterns: tuple
    extra: tuple = field(default=())


EXAMPLE_ROWS = [
    ExampleRow(
        "example-overflowing-outputs",
        overflowing_onnx_export,
        "good.wav",
        ("gives NaN or infinite outputs", r"good\.wav", "nothing was saved"),
    ),
    ExampleRow(
        "example-do-normalize-no",
        with_preprocessor(do_normalize="no"),
        "good.wav",
        (r"preprocessor_config\.json: do_normalize must be true or false", "'no'"),
    ),
    ExampleRow("example-nan-audio", overflowing_onnx_export, "nan.wav", (r"nan\.wav holds NaN or infinite samples",)),
]


@pytest.mark.parametrize("row", EXAMPLE_ROWS, ids=[row.id for row in EXAMPLE_ROWS])
def test_onnx_example(row, files, tmp_path):
    pytest.importorskip("onnxruntime")
    export = row.prepare(tmp_path / "export")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(export), str(files / "audio" / row.audio), "--output", "f.npy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ""},
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for pattern in row.patterns:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert not (tmp_path / "f.npy").exists()


def test_row_ids_are_unique():
    ids = [row.id for row in COMMAND_ROWS] + [row.id for row in ROWS] + [row.id for row in EXAMPLE_ROWS]
    assert len(set(ids)) == len(ids)
