"""Hostile input (issue 23, section 4): broken configs in `info` / `extract` / `export onnx`, `--chunk-length-s inf`,
an export without the `onnx` extra, and `examples/onnx_inference.py` on empty or short audio, a bad `--layer` and a
damaged `.onnx`. One row per case: exit code, exactly one error line naming the problem and the fix, no traceback,
nothing written."""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs

from alhubert import AlHubertConfig, AlHubertModel


REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "onnx_inference.py"
CONFIG = tiny_config_kwargs(num_hidden_layers=4, num_hidden_groups=2, num_attention_heads=2)


def with_config(**values):
    """A copy of the saved model whose config.json has `values` (written as JSON, bypassing AlHubertConfig)."""

    def make(files: Path) -> Path:
        folder = files / ("model-" + "-".join(f"{key}-{len(str(value))}" for key, value in values.items()))
        if not folder.exists():
            shutil.copytree(files / "model", folder)
            config = json.loads((folder / "config.json").read_text())
            config.update(values)
            (folder / "config.json").write_text(json.dumps(config))
        return folder

    return make


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-configs-onnx")
    torch.manual_seed(0)
    AlHubertModel(AlHubertConfig(**CONFIG)).eval().save_pretrained(root / "model")
    rng = np.random.default_rng(0)
    soundfile.write(root / "good.wav", 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    soundfile.write(root / "short.wav", 0.1 * rng.standard_normal(300).astype(np.float32), 16000)
    soundfile.write(root / "empty.wav", np.zeros(0, np.float32), 16000)
    return root


@pytest.fixture(scope="module")
def onnx_export_dir(files):
    pytest.importorskip("onnxruntime")
    from alhubert.inference.onnx_export import export_onnx

    export_onnx(files / "model", files / "onnx-export", all_hidden_states=True)
    damaged = files / "damaged-export"
    shutil.copytree(files / "onnx-export", damaged)
    model = damaged / "onnx" / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    return files / "onnx-export"


@dataclass
class Row:
    id: str
    argv: Callable  # argv(files, out) -> the command line after the Python interpreter
    code: int
    patterns: tuple  # regexes the one error line must match (the problem, then the fix)


def alhubert(*args):
    return ["alhubert", *args]  # run in this process with Typer's CliRunner


def command_rows():
    zero_heads = with_config(num_attention_heads=0)
    no_convs = with_config(conv_dim=[], conv_kernel=[], conv_stride=[])
    rows = []
    for name, broken, pattern in (
        ("zero-heads", zero_heads, "num_attention_heads=0"),
        ("empty-conv-lists", no_convs, "0 convolutions"),
    ):
        rows += [
            Row(f"info-{name}", lambda f, o, b=broken: alhubert("info", str(b(f))), 1, (pattern, "fix config.json")),
            Row(
                f"extract-{name}",
                lambda f, o, b=broken: alhubert(
                    "extract", str(f / "good.wav"), "-m", str(b(f)), "-o", str(o / "x.npy")
                ),
                1,
                (pattern,),
            ),
            Row(
                f"export-{name}",
                lambda f, o, b=broken: alhubert("export", "onnx", str(b(f)), str(o / "onnx")),
                1,
                (pattern, "fix config.json"),
            ),
        ]
    rows += [
        Row(
            "extract-chunk-length-inf",
            lambda f, o: alhubert(
                "extract",
                str(f / "good.wav"),
                "-m",
                str(f / "model"),
                "-o",
                str(o / "x.npy"),
                "--chunk-length-s",
                "inf",
            ),
            2,
            (r"--chunk-length-s must be a positive number of seconds \(finite\), got inf",),
        ),
        Row(
            "extract-stride-length-inf",
            lambda f, o: alhubert(
                "extract",
                str(f / "good.wav"),
                "-m",
                str(f / "model"),
                "-o",
                str(o / "x.npy"),
                "--stride-length-s",
                "inf",
            ),
            2,
            ("--stride-length-s must be 0 or more seconds",),
        ),
        # the onnx extra missing: onnxscript made unimportable (sys.modules entry None) for the row
        Row(
            "export-without-the-onnx-extra",
            lambda f, o: alhubert("export", "onnx", str(f / "model"), str(o / "onnx")),
            1,
            ("needs onnxscript", r'pip install "alhubert\[onnx\]"'),
        ),
        Row(
            "export-a-superb-model",
            lambda f, o: alhubert("export", "onnx", str(superb_model(f)), str(o / "onnx")),
            1,
            ("is a SUPERB model", "not exported to ONNX", "--recipe full"),
        ),
        Row(
            "replication-collect-only-before-any-run",
            lambda f, o: [
                str(REPO / "benchmarks" / "replication.py"),
                "--collect_only",
                "--work_dir",
                str(f / "replication-work"),
                "--results_dir",
                str(f / "replication-results"),
            ],
            1,
            ("--collect_only: the stage corpus has not finished", "run `python benchmarks/replication.py` first"),
        ),
        Row(
            "benchmark-host-overhead-zero-rounds",
            benchmark("host_overhead.py", "--rounds", "0"),
            1,
            ("--rounds and --calls must be at least 1, got 0 and 100", "give positive counts"),
        ),
        Row("benchmark-host-overhead-cuda-without-gpu", benchmark("host_overhead.py", "--device", "cuda"), 1, NO_GPU),
        Row("benchmark-profile-cuda-without-gpu", benchmark("profile_inference.py", "--device", "cuda"), 1, NO_GPU),
        Row(
            "benchmark-positional-conv-cuda-without-gpu",
            benchmark("positional_conv.py", "--device", "cuda"),
            1,
            NO_GPU,
        ),
        Row(
            "benchmark-positional-conv-zero-frames",
            benchmark("positional_conv.py", "--frames", "0"),
            1,
            ("--frames, --batch_sizes and --repeats must be positive", "counts of at least 1"),
        ),
        Row(
            "benchmark-profile-unknown-device",
            benchmark("profile_inference.py", "--device", "tpu"),
            1,
            ("--device must be 'cpu' or 'cuda', got 'tpu'",),
        ),
    ]
    return rows


def benchmark(script: str, *args):
    return lambda f, o: [str(REPO / "benchmarks" / script), *args]


NO_GPU = ("torch sees no CUDA GPU", "use --device cpu")


def superb_model(files: Path) -> Path:
    from alhubert import AlHubertSuperbConfig, AlHubertSuperbForCTC

    folder = files / "superb-model"
    if not folder.exists():
        config = AlHubertSuperbConfig(**CONFIG, superb_lstm_size=8, superb_lstm_layers=1)
        AlHubertSuperbForCTC(config).save_pretrained(folder)
    return folder


def example(export: str, audio: str, *extra):
    return lambda f, o: [str(EXAMPLE), str(f / export), str(f / audio), "--output", str(o / "f.npy"), *extra]


EXAMPLE_ROWS = [
    Row(
        "onnx-example-empty-audio",
        example("onnx-export", "empty.wav"),
        1,
        ("empty.wav has 0 samples", "fewer than the model's receptive field", "give longer audio"),
    ),
    Row("onnx-example-short-audio", example("onnx-export", "short.wav"), 1, ("short.wav has 300 samples",)),
    Row("onnx-example-missing-audio", example("onnx-export", "missing.wav"), 1, ("cannot read .*missing.wav",)),
    Row(
        "onnx-example-layer-too-high",
        example("onnx-export", "good.wav", "--layer", "9"),
        1,
        ("--layer must be between 0 and 4",),
    ),
    Row(
        "onnx-example-layer-negative",
        example("onnx-export", "good.wav", "--layer", "-1"),
        1,
        ("--layer must be between 0 and 4",),
    ),
    Row(
        "onnx-example-damaged-onnx",
        example("damaged-export", "good.wav"),
        1,
        ("model.onnx is not a readable ONNX model", "export it again"),
    ),
]
ROWS = command_rows() + EXAMPLE_ROWS
SUBPROCESS_ROWS = ("onnx-example", "replication", "benchmark-")  # scripts run in a subprocess: marked slow


def run(argv: list[str], cwd: Path) -> tuple[int, str]:
    """The exit code and stderr of `alhubert ...` (in this process) or of the example script (a subprocess: it must
    run without this package's imports)."""
    if argv[0] == "alhubert":
        from typer.testing import CliRunner

        from alhubert.cli import app

        result = CliRunner().invoke(app, argv[1:])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.exit_code, result.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(row, id=row.id, marks=[pytest.mark.slow] if row.id.startswith(SUBPROCESS_ROWS) else [])
        for row in ROWS
    ],
)
def test_one_line_error(row, files, tmp_path, request, monkeypatch):
    if row in EXAMPLE_ROWS:
        request.getfixturevalue("onnx_export_dir")
    if row.id.endswith("cuda-without-gpu") and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    if row.id == "export-without-the-onnx-extra":
        monkeypatch.setitem(sys.modules, "onnxscript", None)
    code, stderr = run(row.argv(files, tmp_path), tmp_path)
    lines = [line for line in stderr.splitlines() if line.strip() and "it/s]" not in line]
    assert code == row.code, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, lines
    for pattern in row.patterns:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_row_ids_are_unique():
    assert len({row.id for row in ROWS}) == len(ROWS)
