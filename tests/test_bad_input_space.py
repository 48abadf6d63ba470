"""Bad input to the Space (spaces/alhubert) and to `alhubert push-to-hub space`: one row per case.

The page's rows: `analyse` raises `SpaceInputError` with one line naming the problem and the fix (the page shows it
through `gr.Error`, tests/test_space_browser.py checks that path). The upload's rows: exit with one `error:` line
and nothing staged.
"""

import math

import numpy as np
import pytest
import soundfile
from helpers import save_tiny_ctc
from space_app import DEMO_CLIP, SPACE_DIR
from space_app import space_analysis as analysis
from typer.testing import CliRunner

from alhubert.cli import app as cli


@pytest.fixture(scope="module")
def ctc(tmp_path_factory):
    return analysis.load_model(str(save_tiny_ctc(tmp_path_factory.mktemp("bad-space-ctc"))))


def _wav(folder, name, samples, rate=16000):
    path = folder / name
    soundfile.write(path, np.asarray(samples, dtype=np.float32), rate)
    return str(path)


def _garbage(folder):
    path = folder / "speech.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 20)
    return str(path)


def _text(folder):
    path = folder / "notes.mp3"
    path.write_text("not audio at all\n")
    return str(path)


PAGE_CASES = {
    "no audio": (lambda folder: None, {}, "No audio: record a clip"),
    "empty path": (lambda folder: "", {}, "No audio"),
    "upload vanished": (lambda folder: str(folder / "gone.wav"), {}, "upload it again"),
    "undecodable file": (_garbage, {}, "Cannot decode this file as audio"),
    "text named .mp3": (_text, {}, "Cannot decode this file as audio"),
    "silence only": (lambda folder: _wav(folder, "silence.wav", np.zeros(32000)), {}, "silent"),
    "near silence": (lambda folder: _wav(folder, "hiss.wav", np.full(32000, 1e-5)), {}, "silent"),
    "shorter than the receptive field": (
        lambda folder: _wav(folder, "click.wav", 0.5 * np.ones(399)),
        {},
        "too short: 399 samples",
    ),
    "empty file": (lambda folder: _wav(folder, "empty.wav", np.zeros(0)), {}, "too short: 0 samples"),
    "NaN samples from the microphone": (
        lambda folder: (16000, np.full(16000, math.nan, dtype=np.float32)),
        {},
        "NaN or infinite",
    ),
    "depth 0": (lambda folder: str(DEMO_CLIP), {"depth": 0}, "depth must be between 1 and 6"),
    "depth beyond the model": (lambda folder: str(DEMO_CLIP), {"depth": 7}, "depth must be between 1 and 6"),
    "unknown similarity": (lambda folder: str(DEMO_CLIP), {"measure": "euclid"}, "Unknown similarity"),
    "ONNX backend without an export": (
        lambda folder: str(DEMO_CLIP),
        {"backend": "ONNX int8"},
        "no onnx/model_quantized.onnx",
    ),
    "unknown backend": (lambda folder: str(DEMO_CLIP), {"backend": "TensorRT"}, "Unknown backend 'TensorRT'"),
}


@pytest.mark.parametrize("case", PAGE_CASES, ids=list(PAGE_CASES))
def test_bad_input_to_the_page_gets_one_line(case, ctc, tmp_path):
    make_audio, options, message = PAGE_CASES[case]
    with pytest.raises(analysis.SpaceInputError) as raised:
        analysis.analyse(ctc, make_audio(tmp_path), **{"depth": 6, **options})
    text = str(raised.value)
    assert message in text and "\n" not in text and "Traceback" not in text


def _full_staging(tmp_path):
    folder = tmp_path / "staged"
    folder.mkdir()
    (folder / "keep.txt").write_text("user file")
    return ["--staging_dir", str(folder)]


def _space_without_readme(tmp_path):
    folder = tmp_path / "space"
    folder.mkdir()
    for name in ("app.py", "space_analysis.py", "requirements.txt"):
        (folder / name).write_text((SPACE_DIR / name).read_text())
    return ["--space_dir", str(folder)]


def _space_without_metadata(tmp_path):
    arguments = _space_without_readme(tmp_path)
    (tmp_path / "space" / "README.md").write_text("# no metadata block\n")
    return arguments


UPLOAD_CASES = {
    "repo id without a namespace": (lambda tmp_path: ["--repo_id", "alhubert"], "user-or-org/name"),
    "repo id with bad characters": (lambda tmp_path: ["--repo_id", "me/al hubert"], "is not a Hub id"),
    "bad model id": (lambda tmp_path: ["--repo_id", "me/space", "--model_id", "a/b/c"], "--model_id"),
    "staging folder not empty": (lambda tmp_path: ["--repo_id", "me/space", *_full_staging(tmp_path)], "not empty"),
    "space folder without README": (
        lambda tmp_path: ["--repo_id", "me/space", *_space_without_readme(tmp_path)],
        "lacks README.md",
    ),
    "README without Space metadata": (
        lambda tmp_path: ["--repo_id", "me/space", *_space_without_metadata(tmp_path)],
        "lacks the Space metadata",
    ),
}


@pytest.mark.parametrize("case", UPLOAD_CASES, ids=list(UPLOAD_CASES))
def test_bad_space_upload_exits_with_one_line(case, tmp_path):
    make_arguments, message = UPLOAD_CASES[case]
    staging = tmp_path / "staging"
    arguments = make_arguments(tmp_path)
    if "--staging_dir" not in arguments:
        arguments += ["--staging_dir", str(staging)]
    result = CliRunner().invoke(cli, ["push-to-hub", "space", *arguments, "--dry_run"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and str(result.exception).startswith("error: ")
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not staging.exists()
    if case == "staging folder not empty":
        assert sorted(path.name for path in (tmp_path / "staged").iterdir()) == ["keep.txt"]
