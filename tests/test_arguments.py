"""One way to read arguments and one output-folder policy for every command: config-relative paths, clearing a YAML
value from the command line, no no-op runs, no surprise resume, nothing deleted that a script did not create, quiet."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fake_checkpoint
from transformers import TrainingArguments

from alhubert.training import commands, run_distillation, run_finetune_classification, run_finetune_ctc
from alhubert.training.arguments import ArgumentParser, DataArguments, OutputArguments
from alhubert.training.checkpoints import check_output_dir
from alhubert.training.commands import setup_logging


REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "demo_corpus"


def parser():
    return ArgumentParser((DataArguments, TrainingArguments, OutputArguments))


def parse_command_line(parser, argv):
    return parser.parse(argv)


def test_paths_in_a_config_file_resolve_against_its_folder(tmp_path, monkeypatch):
    recipe_dir = tmp_path / "recipes"
    (recipe_dir / "student").mkdir(parents=True)
    (recipe_dir / "args.yaml").write_text(
        "librispeech_root: corpus\noutput_dir: runs/out\nresume_from_checkpoint: /abs/checkpoint-8\n"
    )
    monkeypatch.chdir(tmp_path)  # the current directory must not matter
    data_args, training_args, _ = parse_command_line(parser(), [str(recipe_dir / "args.yaml")])
    assert data_args.librispeech_root == str(recipe_dir / "corpus")
    assert training_args.output_dir == str(recipe_dir / "runs" / "out")
    assert training_args.resume_from_checkpoint == "/abs/checkpoint-8"
    # a model name is resolved only when that folder exists next to the file; Hub ids stay as they are
    (recipe_dir / "ctc.yaml").write_text("model_name_or_path: student\naudiofolder: clips\noutput_dir: o\n")
    model_args, data_args, *_ = run_finetune_ctc.parse_arguments([str(recipe_dir / "ctc.yaml")])
    assert model_args.model_name_or_path == str(recipe_dir / "student")
    (recipe_dir / "ctc.yaml").write_text("model_name_or_path: someone/alhubert\naudiofolder: clips\noutput_dir: o\n")
    assert run_finetune_ctc.parse_arguments([str(recipe_dir / "ctc.yaml")])[0].model_name_or_path == "someone/alhubert"


def test_a_yaml_value_can_be_cleared_from_the_command_line(tmp_path):
    (tmp_path / "args.yaml").write_text(
        "librispeech_root: /data\neval_librispeech_sets: dev-clean\nsave_total_limit: 3\noutput_dir: out\n"
    )
    data_args, training_args, _ = parse_command_line(
        parser(), [str(tmp_path / "args.yaml"), "--eval_librispeech_sets", "none", "--save_total_limit=null"]
    )
    assert data_args.eval_librispeech_sets is None and training_args.save_total_limit is None
    # a YAML data source replaced by another one on the command line
    data_args, *_ = parse_command_line(
        parser(), [str(tmp_path / "args.yaml"), "--librispeech_root", "NONE", "--audiofolder", "clips"]
    )
    assert data_args.librispeech_root is None and data_args.audiofolder.endswith("clips")
    # `--report_to none` keeps Transformers' meaning
    _, training_args, _ = parse_command_line(
        parser(), ["--audiofolder", "x", "--output_dir", "o", "--report_to", "none"]
    )
    assert training_args.report_to in ([], ["none"], "none")


def test_all_three_commands_share_the_policy_and_the_override_flag():
    shared = Path(commands.__file__).read_text()
    assert "check_output_dir(training_args, output_args.overwrite_output_dir" in shared
    assert "parser.parse(" in shared and "setup_logging(training_args, logger)" in shared
    assert "set_threads(output_args.threads)" in shared
    for module in (run_distillation, run_finetune_ctc, run_finetune_classification):
        source = Path(module.__file__).read_text()
        assert "parse_command(" in source and "start_run(training_args, output_args, logger" in source, module.__name__
        assert "run_command(main, argv)" in source, module.__name__


@pytest.mark.parametrize("command", ["finetune_ctc", "finetune_classification"])
def test_a_run_that_would_do_nothing_is_an_error(command, tmp_path):
    module = {"finetune_ctc": run_finetune_ctc, "finetune_classification": run_finetune_classification}[command]
    with pytest.raises(ValueError, match="Nothing to do: pass --do_train and/or --do_eval"):
        module.main(["--model_name_or_path", "x", "--audiofolder", str(tmp_path), "--output_dir", str(tmp_path / "o")])


def make_training_args(output_dir, **kwargs):
    return TrainingArguments(output_dir=str(output_dir), report_to=[], **kwargs)


def test_output_folder_policy(tmp_path):
    folder = tmp_path / "out"
    assert check_output_dir(make_training_args(folder), overwrite_output_dir=False) is None  # missing: fine
    folder.mkdir()
    assert check_output_dir(make_training_args(folder), overwrite_output_dir=False) is None  # empty: fine
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty .*--overwrite_output_dir"):
        check_output_dir(make_training_args(folder), overwrite_output_dir=False)
    assert check_output_dir(make_training_args(folder), overwrite_output_dir=True) is None
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        check_output_dir(make_training_args(folder, resume_from_checkpoint="last"), overwrite_output_dir=False)
    fake_checkpoint(folder / "checkpoint-4", 4)
    fake_checkpoint(folder / "checkpoint-8", 8)
    fake_checkpoint(folder / "checkpoint-12", 12, files=("model",))  # killed while saving: skipped on resume
    # never resumed silently: a folder with checkpoints is refused without --resume_from_checkpoint
    with pytest.raises(ValueError, match="checkpoints of a run"):
        check_output_dir(make_training_args(folder), overwrite_output_dir=False)
    assert check_output_dir(make_training_args(folder, resume_from_checkpoint="last"), False).endswith("checkpoint-8")
    # another run's checkpoints would be rotated away by save_total_limit: refused
    with pytest.raises(ValueError, match="save_total_limit would delete"):
        check_output_dir(make_training_args(folder, save_total_limit=1), overwrite_output_dir=True)
    # evaluation only writes metrics: no refusal
    assert check_output_dir(make_training_args(folder), overwrite_output_dir=False, trains=False) is None
    assert (folder / "notes.txt").read_text() == "mine"


def test_every_command_refuses_a_non_empty_output_folder_before_loading_anything(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("user data")
    commands = [
        (run_distillation, ["demo", "--librispeech_root", str(CORPUS), "--output_dir", str(folder)]),
        (
            run_finetune_ctc,
            [
                "--model_name_or_path",
                "missing",
                "--librispeech_root",
                str(CORPUS),
                "--output_dir",
                str(folder),
                "--do_train",
            ],
        ),
        (
            run_finetune_classification,
            [
                "--model_name_or_path",
                "missing",
                "--audiofolder",
                str(tmp_path),
                "--output_dir",
                str(folder),
                "--do_train",
            ],
        ),
    ]
    for module, argv in commands:
        with pytest.raises(ValueError, match="is not empty"):
            module.main(argv)
    assert sorted(os.listdir(folder)) == ["keep.txt"]


def test_quiet_defaults_turn_off_pin_memory_without_an_accelerator(tmp_path):
    import logging

    import torch
    import transformers

    training_args = make_training_args(tmp_path)
    assert training_args.dataloader_pin_memory
    setup_logging(training_args, logging.getLogger("test"))
    if not torch.cuda.is_available():
        assert training_args.dataloader_pin_memory is False
    assert not transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.enable_progress_bar()


def load_demo_script():
    spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_never_deletes_a_folder_it_did_not_create(tmp_path):
    demo = load_demo_script()
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(SystemExit, match="was not written by the demo"):
        demo.main(["--output_dir", str(folder)])
    assert (folder / "thesis.tex").read_text() == "years of work"
    # a folder the demo wrote is replaced
    ours = tmp_path / "ours"
    demo.prepare_output_dir(ours)
    (ours / "model.safetensors").write_text("old")
    demo.prepare_output_dir(ours)
    assert sorted(os.listdir(ours)) == [demo.DEMO_MARKER]


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        [],
        ["distill"],
        ["finetune-ctc"],
        ["finetune-classification"],
        ["convert"],
        ["push-to-hub"],
        ["extract"],
        ["info"],
        ["export", "onnx"],
    ],
    ids=" ".join,
)
def test_help_imports_neither_the_model_code_nor_the_training_stack(command):
    # What makes --help slow is importing Transformers' HuBERT modeling and Trainer (about 2 s on 2 cores); the
    # times themselves are printed by benchmarks/startup.py.
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from alhubert.cli import app\n"
        f"result = CliRunner().invoke(app, [*{command!r}, '--help'])\n"
        "assert result.exit_code == 0 and 'usage' in result.output.lower(), result.output\n"
        "heavy = ['datasets', 'evaluate', 'jiwer', 'transformers.trainer', 'transformers.modeling_utils',\n"
        "         'alhubert.models.modeling_alhubert', 'onnx']\n"
        "print('heavy', [name for name in heavy if name in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "heavy []" in result.stdout, result.stdout
