"""Hostile input to the commands (issue 13): the converter script and `alhubert extract` / `alhubert info`.

One row per case: the exit code, exactly one `error:` / `Error:` line on stderr (progress bars aside) naming the
problem and the fix, no traceback, and the files left behind (no output, no half-written or staging folder).
DoS rows also bound time and memory. Rows of the distillation script are in tests/test_bad_input_training.py.
"""

import contextlib
import os
import re
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from original_checkpoints import random_original_checkpoint
from typer.testing import CliRunner

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.cli import app
from alhubert.hub.model_cards import write_model_card
from alhubert.models.configuration_alhubert import ALHUBERT_AUTO_MAP
from alhubert.original import run_conversion


class conversion_script:  # noqa: N801 - the converter's command line, as a function returning the exit code
    @staticmethod
    def cli_main(args) -> int:
        try:
            run_conversion.cli(args)
        except SystemExit as exit:
            return exit.code
        return 0


HUBERT_CONV_SPEC = "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"
CONFIG = tiny_config_kwargs(num_hidden_layers=4, num_hidden_groups=2, num_attention_heads=2)
PROGRESS_BAR = re.compile(r"\d+%\||\d+it \[|it/s\]|s/it\]|file/s\]")


def stderr_lines(text: str) -> list[str]:
    """Non-empty stderr lines, progress bars (tqdm, carriage-return separated) left out."""
    lines = [line.strip() for line in re.split(r"[\r\n]", text)]
    return [line for line in lines if line and not PROGRESS_BAR.search(line)]


def check_command_outcome(result, code: int, patterns, warnings_expected) -> None:
    """A command's outcome: exit `code`, no traceback, exactly the expected warnings, and on failure exactly one
    `Error: ` line (matching `patterns`; on success the patterns are searched in stdout)."""
    lines = stderr_lines(result.stderr)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in lines if not line.startswith("Warning: ")]
    warnings = [line for line in lines if line.startswith("Warning: ")]
    assert len(warnings) == len(warnings_expected), warnings
    for pattern in warnings_expected:
        assert any(re.search(pattern, line) for line in warnings), f"{pattern!r} not in {warnings}"
    if code:
        assert len(errors) == 1 and errors[0].startswith("Error: "), lines
        text = errors[0]
    else:
        assert errors == [], errors
        text = result.stdout
    for pattern in patterns:
        assert re.search(pattern, text), f"{pattern!r} not in {text!r}"


def read_only_folder(tmp_path: Path) -> Path:
    """A folder nobody can create files in: a chmod 555 folder, or /sys when running as root (root ignores modes)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@contextlib.contextmanager
def umask(value):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def leftovers(folder: Path) -> list[str]:
    """Hidden staging / temporary / `.old.*` entries left in `folder`."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


# --- the converter -----------------------------------------------------------------------------------------------


def checkpoint_with(edit=None):
    checkpoint, _ = random_original_checkpoint(AlHubertConfig(**CONFIG), HUBERT_CONV_SPEC)
    if edit is not None:
        edit(checkpoint)
    return checkpoint


def set_config(**values):
    return lambda checkpoint: checkpoint["Config"]["alhubert"].update(values)


def set_weight(key, value):
    def edit(checkpoint):
        checkpoint["alhubert"][key][0, 0] = value

    return edit


def weights_are(value):
    return lambda checkpoint: checkpoint.__setitem__("alhubert", value)


def add_weight(key, value):
    return lambda checkpoint: checkpoint["alhubert"].__setitem__(key, value)


@dataclass
class ConverterRow:
    id: str
    edit: Callable | None  # edits the checkpoint dict before saving
    patterns: tuple  # regexes the one error line must match (the problem, the fix)
    output: str = "out"  # --output_dir, relative to the test folder ("{read_only}" / "." handled below)
    extra: tuple = ()
    code: int = 1
    dos: bool = False  # time (< 5 s) and memory (< 300 MB) bounds
    prepare: Callable | None = None  # prepare(tmp_path) before running (e.g. an existing output)


CONVERTER_ROWS = [
    ConverterRow(
        "3-nan-weights",
        set_weight("encoder.layers.0.fc1.weight", float("nan")),
        (
            "NaN or infinite",
            r"encoder\.layers\.0\.feed_forward\.intermediate_dense\.weight",
            "before training diverged",
        ),
    ),
    ConverterRow(
        "3-inf-weights",
        set_weight("post_extract_proj.weight", float("inf")),
        ("NaN or infinite", r"feature_projection\.projection\.weight"),
    ),
    ConverterRow(
        "5-repeat-time-1e9", set_config(repeat_time=10**9), (r"2 x 1000000000 layer applications", "1024"), dos=True
    ),
    ConverterRow(
        "5-encoder-layers-1e6",
        set_config(encoder_layers=10**6),
        ("encoder_layers.* is 1000000", "hold 2 distinct encoder layers"),
        dos=True,
    ),
    ConverterRow(
        "6-embed-dim-8192",
        set_config(encoder_embed_dim=8192),
        ("Tensor shapes in the checkpoint differ", r"checkpoint \(32,\), config \(8192,\)"),
        dos=True,
    ),
    ConverterRow(
        "6-ffn-dim-65536",
        set_config(encoder_ffn_embed_dim=65536),
        ("Tensor shapes in the checkpoint differ", "65536"),
        dos=True,
    ),
    ConverterRow(
        "6-embed-dim-65536",
        set_config(encoder_embed_dim=65536),
        (r"encoder_embed_dim'\] is 65,536, more than the 16,384 allowed", "corrupt or crafted"),
        dos=True,
    ),
    ConverterRow(
        "6-ffn-dim-2-30",
        set_config(encoder_ffn_embed_dim=2**30),
        (r"encoder_ffn_embed_dim'\] is 1,073,741,824, more than the 65,536",),
        dos=True,
    ),
    ConverterRow(
        "7-state-dict-is-a-list",
        weights_are([torch.zeros(3)]),
        (r"weights \('alhubert'\) are a list", "not a valid DistilALHuBERT checkpoint"),
    ),
    ConverterRow(
        "7-state-dict-holds-a-string",
        add_weight("encoder.layers.0.fc1.weight", "hello"),
        (r"'encoder\.layers\.0\.fc1\.weight' \(str\)", "not named tensors"),
    ),
    ConverterRow(
        "7-string-for-a-dimension",
        set_config(encoder_ffn_embed_dim="64"),
        (r"encoder_ffn_embed_dim'\] must be a positive integer", "'64'"),
    ),
    ConverterRow(
        "7-string-for-a-dropout", set_config(dropout="0.1"), (r"\['dropout'\] must be a number between 0 and 1",)
    ),
    ConverterRow(
        "7-bool-for-layers", set_config(encoder_layers=True), (r"encoder_layers'\] must be a positive integer",)
    ),
    ConverterRow(
        "7-heads-do-not-divide",
        set_config(encoder_attention_heads=3),
        ("describes no valid ALHuBERT model", "divisible"),
    ),
    ConverterRow(
        "7-read-only-output-parent", None, ("not writable", "choose another location"), output="{read_only}/out"
    ),
    ConverterRow(
        "7-output-dir-dot-overwrite",
        None,
        ("current directory", "Choose a new folder"),
        output=".",
        extra=("--overwrite_output_dir",),
    ),
    ConverterRow(
        "7-output-dir-parent-overwrite",
        None,
        ("current directory or one of its parents",),
        output="..",
        extra=("--overwrite_output_dir",),
    ),
    # already handled
    ConverterRow(
        "existing-output-needs-overwrite",
        None,
        ("not empty", "--overwrite"),
        prepare=lambda tmp: (tmp / "out").mkdir() or (tmp / "out" / "keep.txt").write_text("mine"),
    ),
    ConverterRow(
        "output-is-a-file",
        None,
        ("not a directory", "choose another --output_dir"),
        prepare=lambda tmp: (tmp / "out").write_text("a file"),
    ),
    ConverterRow(
        "foreign-global-needs-trust",
        lambda ck: ck.__setitem__("Args", Path("/x")),
        ("pickles Python objects", "PosixPath", "--trust_checkpoint"),
    ),
    ConverterRow(
        "missing-conv-setting", lambda ck: ck["Config"]["alhubert"].pop("conv_pos"), (r"lacks \['conv_pos'\]",)
    ),
    ConverterRow(
        "code-in-conv-spec",
        set_config(extractor_conv_feature_layers="__import__('os').system('x')"),
        ("conv-layer grammar does not allow",),
    ),
]


@pytest.mark.parametrize("row", CONVERTER_ROWS, ids=[row.id for row in CONVERTER_ROWS])
def test_converter(row, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "user-file.txt").write_text("keep me")
    checkpoint_path = tmp_path / "model.ckpt"
    torch.save(checkpoint_with(row.edit), checkpoint_path)
    if row.prepare:
        row.prepare(work)
    before = sorted(path.name for path in work.iterdir())
    output = row.output.replace("{read_only}", str(read_only_folder(tmp_path)))
    monkeypatch.chdir(work)
    capsys.readouterr()

    rss_before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    code = conversion_script.cli_main(["--checkpoint", str(checkpoint_path), "--output_dir", output, *row.extra])
    elapsed = time.perf_counter() - start
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024

    stderr = capsys.readouterr().err
    lines = stderr_lines(stderr)
    assert code == row.code
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for pattern in row.patterns:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert sorted(path.name for path in work.iterdir()) == before, "files created or removed"
    assert (work / "user-file.txt").read_text() == "keep me"
    assert leftovers(tmp_path) == [] and leftovers(work) == []
    if row.dos:
        assert elapsed < 5, f"took {elapsed:.1f} s"
        assert grown_mib < 300, f"peak memory grew by {grown_mib:.0f} MiB"


def test_converter_end_to_end_one_line_and_exit_code(tmp_path):
    """The real script in a fresh Python: one line on stderr, exit code 1, no traceback."""
    import subprocess

    checkpoint_path = tmp_path / "nan.ckpt"
    torch.save(checkpoint_with(set_weight("encoder.layers.0.fc1.weight", float("nan"))), checkpoint_path)
    script = Path(__file__).parents[1] / "scripts" / "convert_original_checkpoint.py"
    result = subprocess.run(
        [sys.executable, str(script), "--checkpoint", str(checkpoint_path), "--output_dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    lines = stderr_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "NaN" in lines[0], result.stderr
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# --- alhubert extract / info -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A model folder, damaged copies of it and audio files (good, short, truncated, not audio)."""
    root = tmp_path_factory.mktemp("cli-bad-input")
    torch.manual_seed(0)
    model = root / "model"
    AlHubertModel(AlHubertConfig(**CONFIG)).save_pretrained(model)
    truncated = root / "truncated-model"
    shutil.copytree(model, truncated)
    weights = truncated / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    pickled = root / "pickled-model"
    shutil.copytree(model, pickled)
    state = AlHubertModel.from_pretrained(model).state_dict()
    state["payload"] = os.system  # a pickled callable: refused by the weights-only unpickler
    (pickled / "model.safetensors").unlink()
    torch.save(state, pickled / "pytorch_model.bin")

    audio = root / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    soundfile.write(audio / "good.wav", 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    soundfile.write(audio / "short.wav", 0.1 * rng.standard_normal(100).astype(np.float32), 16000)
    soundfile.write(audio / "cut.wav", 0.1 * rng.standard_normal(32000).astype(np.float32), 16000, subtype="PCM_16")
    os.truncate(audio / "cut.wav", 44 + 20000 * 2)  # the header still announces 2 s; 1.25 s remain
    (audio / "notes.wav").write_text("this is not audio")
    return root


@dataclass
class CliRow:
    id: str
    args: Callable  # args(files, out) -> argv after the command
    code: int
    patterns: tuple
    written: tuple = ()  # files that must exist under out afterwards (nothing else)
    warnings: tuple = ()  # patterns, one `Warning:` line each
    command: str = "extract"
    out: str = "out"  # output name under the test folder ("{read_only}/..." for a read-only folder)
    prepare: Callable | None = field(default=None)
    max_seconds: float | None = None  # DoS rows: a time bound


def huge_layer_count_copy(out):
    """A saved tiny model whose config.json claims 10**9 layer applications (a crafted card/info input)."""
    import json

    AlHubertModel(AlHubertConfig(**CONFIG)).save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    config["num_hidden_layers"] = 10**9
    (out / "config.json").write_text(json.dumps(config))


def audio(files, *names):
    return [str(files / "audio" / name) for name in names]


def extract_args(*names, model="model", extra=()):
    return lambda files, out: [*audio(files, *names), "-m", str(files / model), "-o", str(out), *extra]


CLI_ROWS = [
    CliRow(
        "4-folder-with-bad-files-writes-the-rest",
        extract_args("good.wav", "short.wav", "cut.wav", "notes.wav"),
        0,
        (r"Wrote features of 2 file\(s\)", r"skipped 2 file\(s\)"),
        written=("good.npy", "cut.npy"),
        warnings=(
            r"skipping .*short\.wav: .*100 samples.*fewer than the 400",
            r"skipping .*notes\.wav: Cannot read",
            r"cut\.wav looks truncated: its header announces 2\.00 s but only 1\.25 s decoded",
        ),
    ),
    CliRow(
        "4-strict-stops-at-the-first-bad-file",
        extract_args("good.wav", "short.wav", extra=("--strict",)),
        1,
        (r"short\.wav has 100 samples", "drop or pad", "--strict"),
    ),
    CliRow(
        "4-safetensors-names-the-file-not-its-position",
        extract_args("short.wav", "good.wav"),
        0,
        (r"Wrote features of 1 file",),
        written=("out.safetensors",),
        out="out.safetensors",
        warnings=(r"skipping .*short\.wav",),
    ),
    CliRow(
        "4-every-file-bad",
        extract_args("short.wav", "notes.wav"),
        1,
        ("None of the 2 audio file", "nothing was written"),
        warnings=(r"skipping .*short\.wav", r"skipping .*notes\.wav"),
    ),
    CliRow(
        "8-output-in-read-only-folder",
        extract_args("good.wav"),
        1,
        ("not writable", "choose another location"),
        out="{read_only}/features.safetensors",
    ),
    CliRow(
        "8-folder-output-is-a-file",
        extract_args("good.wav"),
        1,
        ("is a file", "give a folder"),
        prepare=lambda out: out.write_text("a file"),
        written=("out",),
    ),
    CliRow(
        "8-file-output-is-a-folder",
        extract_args("good.wav"),
        1,
        ("is a folder", "file name"),
        out="out.npy",
        prepare=lambda out: out.mkdir(),
        written=("out.npy",),
    ),
    CliRow(
        "8-pickled-bin-model",
        extract_args("good.wav", model="pickled-model"),
        1,
        ("pickled weights", "not loaded because that could run code", "safetensors"),
    ),
    CliRow(
        "8-truncated-safetensors-extract",
        extract_args("good.wav", model="truncated-model"),
        1,
        ("damaged or truncated", "save the model again"),
    ),
    CliRow(
        "8-truncated-safetensors-info",
        lambda files, out: [str(files / "truncated-model")],
        1,
        ("damaged or truncated", "save the model again"),
        command="info",
    ),
    CliRow(
        "8-device-cuda-without-cuda",
        extract_args("good.wav", extra=("--device", "cuda")),
        1,
        ("CUDA is not available", "--device cpu"),
    ),
    CliRow(
        "8-device-bogus",
        extract_args("good.wav", extra=("--device", "bogus")),
        1,
        ("Unknown --device 'bogus'", "cpu, cuda or cuda:N"),
    ),
    CliRow(
        "8-negative-stride",
        extract_args("good.wav", extra=("--stride-length-s", "-1")),
        2,
        ("--stride-length-s must be 0 or more",),
    ),
    CliRow(
        "8-zero-chunk",
        extract_args("good.wav", extra=("--chunk-length-s", "0")),
        2,
        ("--chunk-length-s must be a positive number",),
    ),
    CliRow(
        "8-zero-batch-size",
        extract_args("good.wav", extra=("--batch-size", "0")),
        2,
        ("--batch-size must be at least 1",),
    ),
    CliRow(
        "8-dtype-bogus",
        extract_args("good.wav", extra=("--dtype", "float8")),
        2,
        ("--dtype must be one of float32, bfloat16, got 'float8'",),
    ),
    CliRow(
        "5-info-on-a-config-with-1e9-applications",
        lambda files, out: [str(out)],
        1,
        (r"num_hidden_layers is 1,000,000,000, more than the 1,024 allowed", "fix it in config.json"),
        command="info",
        prepare=lambda out: huge_layer_count_copy(out),
        written=("out",),
        max_seconds=5,
    ),
    # already handled
    CliRow("missing-audio", extract_args("missing.wav", extra=("--strict",)), 1, ("Audio file not found",)),
    CliRow(
        "layer-out-of-range", extract_args("good.wav", extra=("--layer", "5")), 1, ("layer must be between 0 and 4",)
    ),
    CliRow(
        "npy-for-two-files",
        extract_args("good.wav", "cut.wav"),
        1,
        ("holds one array", "use a .safetensors"),
        out="out.npy",
    ),
    CliRow("missing-model", extract_args("good.wav", model="no-model"), 1, ("Cannot load the model",)),
    CliRow(
        "existing-output",
        extract_args("good.wav"),
        1,
        ("already exists", "--overwrite"),
        out="out.npy",
        prepare=lambda out: np.save(out, np.zeros(3)),
        written=("out.npy",),
    ),
    CliRow(
        "info-not-a-model-folder",
        lambda files, out: [str(files / "audio")],
        1,
        ("has no config.json",),
        command="info",
    ),
]


@pytest.mark.parametrize("row", CLI_ROWS, ids=[row.id for row in CLI_ROWS])
def test_cli(row, files, tmp_path):
    if row.out.startswith("{read_only}"):
        out = Path(row.out.replace("{read_only}", str(read_only_folder(tmp_path))))
    else:
        out = tmp_path / row.out
    if row.prepare:
        row.prepare(out)
    start = time.perf_counter()
    result = CliRunner().invoke(app, [row.command, *row.args(files, out)])
    if row.max_seconds is not None:
        assert time.perf_counter() - start < row.max_seconds
    check_command_outcome(result, row.code, row.patterns, row.warnings)
    if not row.out.startswith("{read_only}"):
        produced = sorted(path.name for path in tmp_path.iterdir())
        if out.is_dir() and out.name not in row.written:
            produced = sorted(path.name for path in out.iterdir())
        assert produced == sorted(row.written), produced
        assert leftovers(tmp_path) == []


def test_row_ids_are_unique():
    ids = [row.id for row in CONVERTER_ROWS] + [row.id for row in CLI_ROWS]
    assert len(set(ids)) == len(ids)


# --- 12. files follow the umask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["features", "features.safetensors", "one.npy"])
def test_12_extracted_features_follow_the_umask(files, tmp_path, output):
    with umask(0o002):
        result = CliRunner().invoke(
            app, ["extract", *audio(files, "good.wav"), "-m", str(files / "model"), "-o", str(tmp_path / output)]
        )
    assert result.exit_code == 0, result.output
    written = [tmp_path / output] if "." in output else list((tmp_path / output).iterdir())
    assert written and all(path.stat().st_mode & 0o777 == 0o664 for path in written)


def test_12_converted_folder_and_model_card_follow_the_umask(tmp_path):
    checkpoint_path = tmp_path / "model.ckpt"
    torch.save(checkpoint_with(), checkpoint_path)
    with umask(0o002):
        assert (
            conversion_script.cli_main(["--checkpoint", str(checkpoint_path), "--output_dir", str(tmp_path / "out")])
            == 0
        )
        modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "out").iterdir()}
        assert (tmp_path / "out").stat().st_mode & 0o777 == 0o775
        assert set(modes.values()) == {0o664}, modes
        (tmp_path / "out" / "README.md").unlink()
        write_model_card(tmp_path / "out")
        assert (tmp_path / "out" / "README.md").stat().st_mode & 0o777 == 0o664
    # replacing with --overwrite_output_dir leaves no .old.* folder
    assert (
        conversion_script.cli_main(
            ["--checkpoint", str(checkpoint_path), "--output_dir", str(tmp_path / "out"), "--overwrite_output_dir"]
        )
        == 0
    )
    assert leftovers(tmp_path) == []


# --- push-to-hub staging and model cards (issue 23) ---------------------------------------------------------------


def link_out(name):
    """Make `name` in the model folder a symbolic link to a secret file outside it."""

    def prepare(model_dir: Path):
        secret = model_dir.parent / "secret.txt"
        secret.write_text("not for the Hub")
        (model_dir / name).parent.mkdir(exist_ok=True)
        (model_dir / name).unlink(missing_ok=True)
        (model_dir / name).symlink_to(secret)

    return prepare


def foreign_auto_map(model_dir: Path):
    import json

    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"]["AutoModelForPreTraining"] = "elsewhere.OtherModel"
    (model_dir / "config.json").write_text(json.dumps(config))


@dataclass
class PushRow:
    id: str
    prepare: Callable  # prepare(model_dir)
    code: int
    patterns: tuple = ()  # regexes the one error line must match
    check: Callable | None = None  # check(staging_dir) after a successful dry run


def staged_config(staging: Path) -> dict:
    import json

    return json.loads((staging / "config.json").read_text())


PUSH_ROWS = [
    PushRow("23-push-vocab-links-out", link_out("vocab.json"), 1, (r"vocab\.json is a link to a file outside",)),
    PushRow(
        "23-push-special-tokens-link-out",
        link_out("special_tokens_map.json"),
        1,
        (r"special_tokens_map\.json is a link to a file outside", "copy the file into the folder"),
    ),
    PushRow(
        "23-push-onnx-links-out", link_out("onnx/model.onnx"), 1, (r"onnx/model\.onnx is a link to a file outside",)
    ),
    PushRow(
        "23-push-keeps-foreign-auto-map",
        foreign_auto_map,
        0,
        check=lambda staging: (
            staged_config(staging)["auto_map"]
            == {**ALHUBERT_AUTO_MAP, "AutoModelForPreTraining": "elsewhere.OtherModel"}
        ),
    ),
    PushRow(
        "23-push-staged-files-follow-the-umask",
        lambda folder: (folder / "model.safetensors").chmod(0o600),
        0,
        check=lambda staging: {path.stat().st_mode & 0o777 for path in staging.iterdir()} == {0o644},
    ),
]


@pytest.mark.parametrize("row", PUSH_ROWS, ids=[row.id for row in PUSH_ROWS])
def test_push_to_hub_dry_run(row, tmp_path):
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    AlHubertModel(AlHubertConfig(**CONFIG)).save_pretrained(model_dir)
    row.prepare(model_dir)
    staging = tmp_path / "staged"
    with umask(0o022):
        result = CliRunner().invoke(
            app,
            [
                "push-to-hub",
                "--model_dir",
                str(model_dir),
                "--repo_id",
                "someone/tiny",
                "--dry_run",
                "--staging_dir",
                str(staging),
            ],
        )
    assert result.exit_code == row.code, result.output
    assert "Traceback" not in result.output
    if row.code:  # (Click's runner shows the `sys.exit` message on stdout; a real process prints it on stderr)
        lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, result.output
        for pattern in row.patterns:
            assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
        assert not staging.exists() or not any(staging.rglob("*")), "staged files after a refusal"
        assert "not for the Hub" not in "".join(
            path.read_text(errors="ignore") for path in staging.rglob("*") if path.is_file()
        )
    else:
        assert row.check(staging), sorted(path.name for path in staging.iterdir())


def test_23_checkpoint_strings_are_inert_text_in_the_model_card(tmp_path):
    def hostile(checkpoint):
        checkpoint["Step"] = "<script>alert(1)</script>\n# Owned step"
        checkpoint["Config"].setdefault("teacher", {})["path"] = "/x/<img src=x onerror=alert(1)>\n## Heading.ckpt"

    checkpoint_path = tmp_path / "model.ckpt"
    torch.save(checkpoint_with(hostile), checkpoint_path)
    assert conversion_script.cli_main(["--checkpoint", str(checkpoint_path), "--output_dir", str(tmp_path / "o")]) == 0
    card = (tmp_path / "o" / "README.md").read_text()
    assert "<script" not in card and "<img" not in card
    assert not any(line.lstrip().startswith(("# Owned", "## Heading")) for line in card.splitlines())
    assert "&lt;script&gt;alert(1)&lt;/script&gt; # Owned step" in card  # shown, not interpreted


def test_23_converting_writes_the_card_once(tmp_path, monkeypatch):
    from alhubert.hub import model_cards

    written = []
    original = model_cards.build_model_card
    monkeypatch.setattr(model_cards, "build_model_card", lambda *a, **k: written.append(1) or original(*a, **k))
    checkpoint_path = tmp_path / "model.ckpt"
    torch.save(checkpoint_with(), checkpoint_path)
    assert conversion_script.cli_main(["--checkpoint", str(checkpoint_path), "--output_dir", str(tmp_path / "o")]) == 0
    assert len(written) == 1 and (tmp_path / "o" / "README.md").is_file()
