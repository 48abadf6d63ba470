"""What an install gets: bounded dependencies, optional FFmpeg decoder, a LICENSE, the training commands and recipes in
the wheel, and tools' absence reported in one line."""

import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import setuptools


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup_kwargs():
    captured = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        source = (REPO / "setup.py").read_text().replace('open("README.md"', f"open({str(REPO / 'README.md')!r}")
        exec(compile(source, "setup.py", "exec"), {"__name__": "__main__"})
    finally:
        setuptools.setup = original
    return captured


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_every_dependency_has_a_lower_bound_and_the_fragile_ones_an_upper_bound(setup_kwargs):
    requirements = list(setup_kwargs["install_requires"])
    for extra in setup_kwargs["extras_require"].values():
        requirements += extra
    for requirement in requirements:
        assert ">=" in requirement, requirement
    by_name = {requirement_name(requirement): requirement for requirement in requirements}
    assert re.search(r"jiwer>=3\b", by_name["jiwer"]) and "<" in by_name["jiwer"]
    for name in ("typer", "transformers", "torchcodec", "datasets"):
        assert "<" in by_name[name], by_name[name]


def test_torchcodec_is_optional_and_the_unused_ctc_lm_extra_is_gone(setup_kwargs):
    assert not any(requirement_name(r) == "torchcodec" for r in setup_kwargs["install_requires"])
    assert not any(requirement_name(r) == "torchcodec" for r in setup_kwargs["extras_require"]["train"])
    assert [requirement_name(r) for r in setup_kwargs["extras_require"]["ffmpeg"]] == ["torchcodec"]
    assert "ctc-lm" not in setup_kwargs["extras_require"]
    assert {"soundfile", "soxr"} <= {requirement_name(r) for r in setup_kwargs["install_requires"]}


def test_license_file_is_the_apache_2_license_the_cards_declare(setup_kwargs):
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert setup_kwargs["license"] == "Apache-2.0"
    from alhubert.hub import model_cards

    assert "apache-2.0" in Path(model_cards.__file__).read_text()


def test_make_installs_the_speech_tools_for_the_targets_that_need_them():
    makefile = (REPO / "Makefile").read_text()
    assert "espeak-ng sox" in makefile
    for target in ("demo-corpus", "benchmark-long-audio"):
        assert re.search(rf"^{target}:.*speech-tools", makefile, re.M), target
    for target in ("test", "test-fast"):  # datasets' audio sources need FFmpeg; the replication test needs espeak-ng
        assert re.search(rf"^{target}:.*ffmpeg.*speech-tools", makefile, re.M), target
    # installing the package and running the demo need no system package
    install_recipe = makefile.split("$(VENV)/.installed: setup.py")[1].split("\n\n")[0]
    assert "apt-get" not in install_recipe
    assert re.search(r"^install: \$\(VENV\)/\.installed$", makefile, re.M)
    assert re.search(r"^demo: install$", makefile, re.M)


def test_long_audio_benchmark_without_espeak_fails_in_one_line(monkeypatch):
    spec = importlib.util.spec_from_file_location("long_audio_benchmark", REPO / "benchmarks" / "long_audio.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exit_info:
        module.speech(1.0)
    message = str(exit_info.value.code)
    assert message.startswith("error: espeak-ng not found") and "\n" not in message


@pytest.mark.slow
def test_the_wheel_ships_the_commands_recipes_and_metrics(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("alhubert-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "alhubert/training/run_distillation.py",
        "alhubert/training/run_finetune_ctc.py",
        "alhubert/training/run_finetune_classification.py",
        "alhubert/training/configs/small.yaml",
        "alhubert/training/configs/demo.yaml",
        "alhubert/training/metrics/__init__.py",
        "alhubert/hub/model_card_template.md",
        "alhubert/models/audio.py",
    ):
        assert name in names, name
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "alhubert = alhubert.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
