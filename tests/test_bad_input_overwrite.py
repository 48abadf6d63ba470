"""Replacing an output folder (`alhubert convert --overwrite_output_dir`, `alhubert export onnx --overwrite`): one
rule, `alhubert.utils.files.check_replaceable_folder`: only a folder of the files the command writes (and, for a
model folder, a model config) is replaced; a folder holding anything of the user's is refused with one line naming
it, and every byte in it stays. One row per case."""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import tiny_config_kwargs
from original_checkpoints import random_original_checkpoint
from typer.testing import CliRunner

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.cli import app
from alhubert.original import run_conversion


CONFIG = tiny_config_kwargs(num_hidden_layers=4, num_hidden_groups=2, num_attention_heads=2)
CONV_SPEC = "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"


def snapshot(folder: Path) -> dict:
    """Every file, folder and link under `folder` with its bytes (or link target)."""
    found = {}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                found[relative] = ("folder",)
            else:
                found[relative] = ("file", path.read_bytes())
    return found


def user_files(folder: Path, config=None):
    """A user's folder: notes, a sub-folder of results, and optionally a config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "results").mkdir()
    (folder / "results" / "table.csv").write_text("a,b\n1,2\n")
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))


def converted(folder: Path, checkpoint: Path):
    """A real converted model folder."""
    assert run_conversion.cli(["--checkpoint", str(checkpoint), "--output_dir", str(folder)]) == folder


def with_extra(make, extra: Callable):
    def prepare(folder, checkpoint):
        make(folder, checkpoint)
        extra(folder)

    return prepare


@dataclass
class ConvertRow:
    id: str
    prepare: Callable  # prepare(output_folder, checkpoint_path)
    patterns: tuple  # regexes of the one error line; () for a row that must succeed


CONVERT_ROWS = [
    ConvertRow(
        "convert-settings-config-and-user-files",
        lambda out, ck: user_files(out, {"learning_rate": 0.1, "notes": "my experiment"}),
        ("is not replaced", "notes.txt|results/", "alhubert convert does not write", "choose a new folder"),
    ),
    ConvertRow(
        "convert-model-config-and-a-user-file",
        with_extra(converted, lambda out: (out / "thesis.txt").write_text("chapter 1")),
        ("holds thesis.txt", "alhubert convert does not write"),
    ),
    ConvertRow(
        "convert-model-folder-with-a-user-sub-folder",
        with_extra(converted, lambda out: (out / "runs").mkdir() or (out / "runs" / "log.txt").write_text("x")),
        (r"the folder runs/",),
    ),
    ConvertRow(
        "convert-model-folder-with-a-link",
        with_extra(converted, lambda out: os.symlink("/etc/hostname", out / "vocab.json")),
        ("the link vocab.json",),
    ),
    ConvertRow(
        "convert-model-file-names-but-a-bert-config",
        lambda out, ck: (
            out.mkdir()
            or (out / "config.json").write_text('{"model_type": "bert"}')
            or (out / "model.safetensors").write_bytes(b"mine")
        ),
        ("config.json is not the config of a alhubert model",),
    ),
    ConvertRow(
        "convert-config-that-is-not-json",
        lambda out, ck: out.mkdir() or (out / "config.json").write_text("name = my settings"),
        ("config.json is not the config",),
    ),
    ConvertRow(
        "convert-replaces-its-own-folder-with-an-onnx-export",
        with_extra(converted, lambda out: (out / "onnx").mkdir() or (out / "onnx" / "model.onnx").write_bytes(b"x")),
        (),
    ),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "model.ckpt"
    torch.save(random_original_checkpoint(AlHubertConfig(**CONFIG), CONV_SPEC)[0], path)
    return path


@pytest.mark.parametrize("row", CONVERT_ROWS, ids=[row.id for row in CONVERT_ROWS])
def test_convert_overwrite(row, checkpoint, tmp_path, capsys):
    import re

    out = tmp_path / "out"
    row.prepare(out, checkpoint)
    before = snapshot(out)
    capsys.readouterr()
    try:
        run_conversion.cli(["--checkpoint", str(checkpoint), "--output_dir", str(out), "--overwrite_output_dir"])
        code = 0
    except SystemExit as exit:
        code = exit.code
    stderr = capsys.readouterr().err.strip().splitlines()
    if not row.patterns:
        assert code == 0 and not [line for line in stderr if line.startswith("error")], stderr
        assert (out / "model.safetensors").is_file() and not (out / "onnx").exists()
        return
    assert code == 1 and len(stderr) == 1 and stderr[0].startswith("error: "), stderr
    for pattern in row.patterns:
        assert re.search(pattern, stderr[0]), f"{pattern!r} not in {stderr[0]!r}"
    assert snapshot(out) == before, "the folder changed"
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


# --- alhubert export onnx --overwrite -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("export-model") / "model"
    torch.manual_seed(0)
    AlHubertModel(AlHubertConfig(**CONFIG)).eval().save_pretrained(directory)
    return directory


@dataclass
class ExportRow:
    id: str
    prepare: Callable  # prepare(work, model_dir) -> (model argument, output argument, the folder that must stay)
    patterns: tuple


def export_into_user_folder(config=None):
    def prepare(work, model):
        user_files(work / "mine", config)
        return str(model), str(work / "mine"), work / "mine"

    return prepare


def export_into_cwd(work, model):
    user_files(work / "home")
    os.chdir(work / "home")
    return str(model), str(Path.cwd()), work / "home"


def export_in_place_with_user_file(work, model):
    import shutil

    copy = work / "model"
    shutil.copytree(model, copy)
    (copy / "onnx").mkdir()
    (copy / "onnx" / "model.onnx").write_bytes(b"old export")
    (copy / "onnx" / "benchmark.txt").write_text("my timings")
    return str(copy), str(copy), copy


EXPORT_ROWS = [
    ExportRow(
        "export-user-folder",
        export_into_user_folder(),
        ("is not replaced", "notes.txt|results/", "alhubert export onnx does not write"),
    ),
    ExportRow(
        "export-user-folder-with-a-model-config",
        export_into_user_folder(json.loads(AlHubertConfig(**CONFIG).to_json_string())),
        ("is not replaced", "notes.txt|results/"),
    ),
    ExportRow("export-current-directory-as-an-absolute-path", export_into_cwd, ("current directory",)),
    ExportRow(
        "export-in-place-onnx-folder-with-a-user-file",
        export_in_place_with_user_file,
        ("holds benchmark.txt", "alhubert export onnx does not write"),
    ),
]


@pytest.mark.parametrize("row", EXPORT_ROWS, ids=[row.id for row in EXPORT_ROWS])
def test_export_overwrite(row, model_dir, tmp_path, monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    model, output, kept = row.prepare(tmp_path, model_dir)
    before = snapshot(kept)
    result = CliRunner().invoke(app, ["export", "onnx", model, output, "--overwrite"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for pattern in row.patterns:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert snapshot(kept) == before, "the folder changed"


def test_export_replaces_its_own_export(model_dir, tmp_path, monkeypatch):
    """The rule still lets an export replace an earlier export (config, preprocessing files, onnx/). The graph
    export itself is stubbed: what is tested is which folder may be replaced."""
    from alhubert.inference import onnx_export

    exports = iter([b"first export", b"second export"])
    monkeypatch.setattr(onnx_export, "_export_graph", lambda *args: args[-1].write_bytes(next(exports)))
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["export", "onnx", str(model_dir), str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "onnx" / "model.onnx").read_bytes() == b"first export"
    result = CliRunner().invoke(app, ["export", "onnx", str(model_dir), str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "onnx" / "model.onnx").read_bytes() == b"second export"
    assert sorted(path.name for path in out.iterdir()) == ["config.json", "onnx", "preprocessor_config.json"]


def test_row_ids_are_unique():
    ids = [row.id for row in CONVERT_ROWS] + [row.id for row in EXPORT_ROWS]
    assert len(set(ids)) == len(ids)
