"""Hostile input to the distillation script and its data (issue 13): one row per case.

Set-up problems are one `error: ...` line on stderr, exit code 1, nothing written; an unreadable file at batch size
1 is skipped and another drawn (and counted in train_results.json); `--resume_from_checkpoint last` picks the newest
COMPLETE checkpoint. (The end-to-end resume after a kill while saving is in tests/test_distill_script.py, slow.)
"""

import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import fake_checkpoint, tiny_config_kwargs
from test_bad_input_commands import leftovers, read_only_folder, stderr_lines

from alhubert import AlHubertConfig, default_feature_extractor
from alhubert.training import run_distillation
from alhubert.training.checkpoints import checkpoint_problems, last_complete_checkpoint
from alhubert.training.data import AudioCollator


REPO_ROOT = Path(__file__).resolve().parent.parent

CORPUS = REPO_ROOT / "data" / "demo_corpus"
SPEAKER = CORPUS / "train-clean-demo" / "1001" / "100"
QUICK = [
    "--teacher_name_or_path",
    "demo-random-teacher",
    "--teacher_dtype",
    "float32",
    "--num_hidden_groups",
    "2",
    "--num_hidden_layers",
    "4",
    "--student_layers",
    "2",
    "4",
    "--teacher_layers",
    "2",
    "4",
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "1",
    "--max_length_samples",
    "16000",
    "--min_length_samples",
    "400",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--save_strategy",
    "no",
    "--dataloader_num_workers",
    "0",
    "--dataloader_pin_memory",
    "false",
    "--logging_steps",
    "1",
    "--librispeech_sets",
    "train-clean-demo",
]


def corpus(root: Path, utterances=2, corrupt=(), transcripts=True) -> Path:
    """A LibriSpeech-layout copy of a few demo utterances; `corrupt` ones hold bytes no decoder reads."""
    chapter = root / "train-clean-demo" / "1001" / "100"
    chapter.mkdir(parents=True)
    lines = SPEAKER.joinpath("1001-100.trans.txt").read_text().splitlines()[:utterances]
    for line in lines:
        name = line.split()[0]
        if name in corrupt:
            (chapter / f"{name}.flac").write_bytes(b"\x00garbage" * 500)
        else:
            shutil.copy(SPEAKER / f"{name}.flac", chapter / f"{name}.flac")
    if transcripts:
        (chapter / "1001-100.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def run_distill(args, capsys):
    capsys.readouterr()
    try:
        run_distillation.cli(args)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


def setup_missing_root(tmp):
    return ["--librispeech_root", str(tmp / "no-such-corpus")]


def setup_empty_folder(tmp):
    (tmp / "empty").mkdir()
    return ["--librispeech_root", str(tmp / "empty")]


def setup_no_transcripts(tmp):
    return ["--librispeech_root", str(corpus(tmp / "corpus", transcripts=False))]


def setup_existing_output(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "config.json").write_text("{}")
    return ["--librispeech_root", str(corpus(tmp / "corpus"))]


def setup_read_only_output(tmp):
    return [
        "--librispeech_root",
        str(corpus(tmp / "corpus")),
        "--output_dir",
        str(read_only_folder(tmp) / "distilled"),
    ]


def setup_missing_argument_file(tmp):
    return [str(tmp / "missing.yaml")]


def setup_resume_without_checkpoints(tmp):
    return ["--librispeech_root", str(corpus(tmp / "corpus")), "--resume_from_checkpoint", "last"]


SETUP_ROWS = [
    ("9-missing-corpus-root", setup_missing_root, ("LibriSpeech set .*no-such-corpus.* not found", "sets under")),
    ("9-empty-corpus-folder", setup_empty_folder, ("LibriSpeech set .* not found", "none")),
    ("9-folder-without-transcripts", setup_no_transcripts, (r"No \*\.trans\.txt transcripts found",)),
    (
        "9-existing-output-folder",
        setup_existing_output,
        ("is not empty", "--resume_from_checkpoint last", "choose another folder"),
    ),
    ("9-read-only-output-folder", setup_read_only_output, ("not writable", "choose another location")),
    ("argument-file-missing", setup_missing_argument_file, ("Argument file .*missing.yaml not found",)),
    ("10-resume-last-without-checkpoints", setup_resume_without_checkpoints, ("no checkpoint-\\* folder",)),
]


@pytest.mark.parametrize("make_args, patterns", [row[1:] for row in SETUP_ROWS], ids=[row[0] for row in SETUP_ROWS])
def test_distill_setup_errors_are_one_line(make_args, patterns, demo_cache, tmp_path, capsys):
    args = make_args(tmp_path)
    if not any(arg == "--output_dir" for arg in args):
        args += ["--output_dir", str(tmp_path / "out")]
    before = sorted(path.name for path in tmp_path.iterdir())
    code, stderr = run_distill([*args, *QUICK] if not args[0].endswith(".yaml") else args, capsys)
    lines = stderr_lines(stderr)
    assert code == 1 and "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for pattern in patterns:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert sorted(path.name for path in tmp_path.iterdir()) == before, "files created"
    assert leftovers(tmp_path) == []


def test_9_unreadable_file_at_batch_size_1_is_skipped_and_counted(demo_cache, tmp_path, capsys):
    """One undecodable file, batch size 1: the run goes on (another row is drawn) and train_results.json counts it."""
    root = corpus(tmp_path / "corpus", utterances=2, corrupt=("1001-100-0000",))
    code, stderr = run_distill(
        ["--librispeech_root", str(root), "--output_dir", str(tmp_path / "out"), *QUICK], capsys
    )
    assert code == 0, stderr
    results = json.loads((tmp_path / "out" / "train_results.json").read_text())
    assert results["skipped_audio_files"] >= 1
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_9_collator_draws_another_row_when_every_file_is_unreadable(tmp_path, caplog):
    good = {"audio": {"array": np.zeros(16000, np.float32), "sampling_rate": 16000, "path": "good.flac"}}
    bad = {"audio": {"path": str(tmp_path / "bad.flac"), "bytes": b"\x00garbage" * 100}}
    collator = AudioCollator(
        default_feature_extractor(AlHubertConfig(**tiny_config_kwargs())), redraw_from=[bad, good]
    )
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING):
        batch = collator([bad])
    assert batch["input_values"].shape == (1, 16000)
    assert collator.num_skipped >= 1
    assert "drew good.flac instead" in caplog.text
    without = AudioCollator(default_feature_extractor(AlHubertConfig(**tiny_config_kwargs())))
    with pytest.raises(ValueError, match="Every file of this batch was unreadable"):
        without([bad])


# --- 10. resume from the newest COMPLETE checkpoint ------------------------------------------------------------


HALF_SAVED = [
    ("no-trainer-state", ("model", "optimizer", "scheduler"), "no trainer_state.json"),
    ("torn-trainer-state", ("model", "optimizer", "scheduler", "torn-state"), "torn"),
    ("no-scheduler", ("model", "optimizer", "state"), "no scheduler.pt"),
    ("no-weights", ("state", "optimizer", "scheduler"), "no model weights"),
    ("torn-weights", ("torn-model", "state", "optimizer", "scheduler"), "model.safetensors is unreadable"),
]


@pytest.mark.parametrize("files, why", [row[1:] for row in HALF_SAVED], ids=[f"10-{row[0]}" for row in HALF_SAVED])
def test_10_resume_last_skips_a_half_saved_checkpoint(tmp_path, caplog, files, why):
    fake_checkpoint(tmp_path / "checkpoint-8", 8)
    fake_checkpoint(tmp_path / "checkpoint-16", 16, files)
    assert any(why in problem for problem in checkpoint_problems(tmp_path / "checkpoint-16"))
    with caplog.at_level(logging.INFO):
        assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-8")
    assert re.search(rf"Skipping checkpoint-16: it is incomplete \(.*{why}", caplog.text)
    assert "newest complete checkpoint" in caplog.text


def test_10_no_complete_checkpoint_is_an_error_naming_each(tmp_path):
    fake_checkpoint(tmp_path / "checkpoint-16", 16, ("model",))
    with pytest.raises(FileNotFoundError, match=r"No complete checkpoint.*checkpoint-16: .*no trainer_state\.json"):
        last_complete_checkpoint(tmp_path)
    assert last_complete_checkpoint(tmp_path / "empty") is None


def test_10_save_only_model_checkpoints_need_no_optimizer(tmp_path):
    fake_checkpoint(tmp_path / "checkpoint-4", 4, ("model", "state"))
    assert last_complete_checkpoint(tmp_path, save_only_model=True) == str(tmp_path / "checkpoint-4")


# --- set-up errors of every training command, argument files, resume: one line (issue 23) -----------------------


def training_command(module_name: str, args: list[str], capsys) -> tuple[int, str]:
    import importlib

    module = importlib.import_module(f"alhubert.training.{module_name}")
    capsys.readouterr()
    try:
        module.cli(args)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


def argument_file(tmp: Path, text: str, name: str = "args.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def resume_from_fixture(tmp: Path, damage) -> list[str]:
    from test_distillation_resume import FIXTURE, run_arguments

    output_dir = tmp / "run"
    shutil.copytree(FIXTURE / "checkpoint-2", output_dir / "checkpoint-2")
    damage(output_dir / "checkpoint-2")
    return [*run_arguments(output_dir), "--resume_from_checkpoint", "last"]


def pickled_optimizer(checkpoint: Path):
    import argparse

    torch.save({"state": argparse.Namespace(step=1)}, checkpoint / "optimizer.pt")  # a class: not plain data


def pickled_rng_state(checkpoint: Path):
    import fractions

    torch.save({"python": fractions.Fraction(1, 3)}, checkpoint / "rng_state.pth")  # a class: not plain data


def nan_weights(checkpoint: Path):
    from safetensors.torch import load_file, save_file

    weights = load_file(checkpoint / "model.safetensors")
    key = sorted(weights)[0]
    weights[key] = torch.full_like(weights[key], float("nan"))
    save_file(weights, checkpoint / "model.safetensors")


def yaml_alias_bomb(tmp: Path) -> str:
    lines = ["a0: &a0 [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]"]
    lines += [f"a{index}: &a{index} [{', '.join([f'*a{index - 1}'] * 10)}]" for index in range(1, 9)]
    lines.append("student_layers: *a8")  # 10**9 entries once expanded
    return argument_file(tmp, "\n".join(lines) + "\n")


def DISTILL_DEMO(tmp: Path) -> list[str]:
    return ["--librispeech_root", str(corpus(tmp / "corpus")), "--output_dir", str(tmp / "out"), *QUICK]


def CTC_BASE(tmp: Path) -> list[str]:
    return ["--audiofolder", str(tmp), "--output_dir", str(tmp / "out")]


COMMAND_ROWS = [
    (
        "ctc-no-model",
        "run_finetune_ctc",
        lambda tmp: [*CTC_BASE(tmp), "--do_train"],
        ("--model_name_or_path is required",),
        1,
    ),
    (
        "ctc-nothing-to-do",
        "run_finetune_ctc",
        lambda tmp: ["--model_name_or_path", "x", *CTC_BASE(tmp)],
        ("Nothing to do",),
        1,
    ),
    (
        "ctc-non-empty-output",
        "run_finetune_ctc",
        lambda tmp: (
            (tmp / "out").mkdir()
            or (tmp / "out" / "mine.txt").write_text("x")
            and ["--model_name_or_path", "x", *CTC_BASE(tmp), "--do_train"]
        ),
        ("is not empty",),
        1,
    ),
    (
        "ctc-mfcc-upstream-fine-tuned",
        "run_finetune_ctc",
        lambda tmp: ["--model_name_or_path", "x", *CTC_BASE(tmp), "--do_train", "--upstream", "mfcc"],
        ("--upstream mfcc needs --recipe superb",),
        1,
    ),
    (
        "classification-mfcc-upstream-fine-tuned",
        "run_finetune_classification",
        lambda tmp: ["--model_name_or_path", "x", *CTC_BASE(tmp), "--do_train", "--upstream", "mfcc"],
        ("--upstream mfcc needs --freeze_base_model true",),
        1,
    ),
    (
        "classification-no-model",
        "run_finetune_classification",
        lambda tmp: [*CTC_BASE(tmp), "--do_eval"],
        ("--model_name_or_path is required",),
        1,
    ),
    (
        "classification-missing-eval-data",
        "run_finetune_classification",
        lambda tmp: [
            "--model_name_or_path",
            "x",
            "--audiofolder",
            str(tmp / "none"),
            "--output_dir",
            str(tmp / "o"),
            "--do_eval",
            "--validation_split_percentage",
            "150",
        ],
        ("validation_split_percentage",),
        1,
    ),
    (
        "malformed-yaml",
        "run_distillation",
        lambda tmp: [argument_file(tmp, "max_steps: [1, 2\n")],
        ("is not valid YAML/JSON",),
        1,
    ),
    (
        "yaml-not-a-mapping",
        "run_distillation",
        lambda tmp: [argument_file(tmp, "- 1\n- 2\n")],
        ("must hold a mapping",),
        1,
    ),
    (
        "json-list-for-a-number",
        "run_distillation",
        lambda tmp: [argument_file(tmp, '{"librispeech_root": "x", "max_steps": [1, 2]}', "args.json")],
        ("max_steps .* must be a single value",),
        1,
    ),
    (
        "json-text-in-a-list-of-layers",
        "run_distillation",
        lambda tmp: [argument_file(tmp, '{"librispeech_root": "x", "student_layers": ["a"]}', "args.json")],
        ("student_layers .* must be a list of int",),
        1,
    ),
    (
        "yaml-text-for-a-number",
        "run_distillation",
        lambda tmp: [argument_file(tmp, "librispeech_root: x\nmax_steps: many\n")],
        ("invalid int value: 'many'",),
        2,
    ),
    ("yaml-alias-bomb", "run_distillation", lambda tmp: [yaml_alias_bomb(tmp)], ("expands to more than",), 1),
    (
        "student-layer-9",
        "run_distillation",
        lambda tmp: [*DISTILL_DEMO(tmp), "--student_layers", "9", "4"],
        (r"student_layers \[9\] out of range",),
        1,
    ),
    (
        "teacher-layer-minus-1",
        "run_distillation",
        lambda tmp: [*DISTILL_DEMO(tmp), "--teacher_layers", "-1", "4"],
        (r"teacher_layers \[-1\] out of range",),
        1,
    ),
    (
        "threads-0",
        "run_distillation",
        lambda tmp: [*DISTILL_DEMO(tmp), "--threads", "0"],
        ("--threads must be at least 1",),
        1,
    ),
    (
        "missing-corpus-before-the-teacher",
        "run_distillation",
        lambda tmp: ["small", "--librispeech_root", str(tmp / "missing"), "--output_dir", str(tmp / "out")],
        ("LibriSpeech set .*missing.* not found",),
        1,
    ),
    (
        "resume-pickled-optimizer",
        "run_distillation",
        lambda tmp: resume_from_fixture(tmp, pickled_optimizer),
        ("optimizer.pt cannot be loaded safely", "could run code"),
        1,
    ),
    (
        "resume-pickled-rng-state",
        "run_distillation",
        lambda tmp: resume_from_fixture(tmp, pickled_rng_state),
        ("rng_state.pth cannot be loaded safely",),
        1,
    ),
    (
        "resume-nan-weights",
        "run_distillation",
        lambda tmp: resume_from_fixture(tmp, nan_weights),
        ("not finite", "earlier checkpoint"),
        1,
    ),
]


@pytest.mark.parametrize(
    "module_name, make_args, patterns, expected_code",
    [row[1:] for row in COMMAND_ROWS],
    ids=[row[0] for row in COMMAND_ROWS],
)
def test_training_command_setup_errors_are_one_line(
    module_name, make_args, patterns, expected_code, demo_cache, tmp_path, capsys, monkeypatch
):
    from alhubert.training import run_distillation as distill

    loaded, load_teacher = [], distill.load_teacher
    monkeypatch.setattr(distill, "load_teacher", lambda *args: loaded.append(args) or load_teacher(*args))
    args = make_args(tmp_path)
    code, stderr = training_command(module_name, args, capsys)
    lines = stderr_lines(stderr)
    assert code == expected_code and "Traceback" not in stderr, stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for pattern in patterns:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert not (tmp_path / "out" / "model.safetensors").exists()
    if "missing" in str(args):  # local inputs are checked before the teacher is looked for (on the Hub)
        assert loaded == []


def test_a_training_command_without_the_train_extra_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # `import datasets` fails as if not installed
    code, stderr = training_command("run_distillation", ["--librispeech_root", str(tmp_path)], capsys)
    lines = stderr_lines(stderr)
    assert code == 1 and len(lines) == 1 and 'pip install "alhubert[train]"' in lines[0], lines


# --- the teacher cache (issue 23): files it did not write are refused, never replaced or used --------------------


def cache_tiny_teacher():
    from test_teacher_cache import tiny_teacher

    return tiny_teacher()


def foreign_manifest(folder: Path):
    (folder / "manifest.json").write_text('{"my": "own manifest"}')


def foreign_shard(folder: Path):
    from safetensors.torch import save_file

    save_file({"weights": torch.ones(3)}, str(folder / "shard-mine.safetensors"))


def damaged_manifest(folder: Path):
    (folder / "manifest.json").write_text('{"format": 1, "teacher": {')


def filled_cache(folder: Path, edit=None):
    """A real cache with one stored utterance; `edit(shard)` then damages its shard."""
    from alhubert.training.teacher_cache import TeacherCache

    cache = TeacherCache.for_teacher(folder, cache_tiny_teacher(), [2, 4], False)
    cache.store([("a", "sig-a")], [torch.randn(1, 5, 32), torch.randn(1, 5, 32)], [5])
    cache.flush()
    if edit is not None:
        edit(next(folder.glob("shard-*.safetensors")))


def nan_targets(shard: Path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(shard, framework="pt") as handle:
        metadata, tensor = handle.metadata(), handle.get_tensor("a")
    save_file({"a": torch.full_like(tensor, float("nan"))}, str(shard), metadata=metadata)


CACHE_ROWS = [
    ("23-cache-foreign-manifest", foreign_manifest, r"manifest\.json was not written by the teacher cache"),
    ("23-cache-foreign-shard", foreign_shard, r"shard-mine\.safetensors was not written by the teacher cache"),
    ("23-cache-damaged-manifest", damaged_manifest, r"manifest\.json is damaged .*delete the folder"),
    (
        "23-cache-truncated-shard",
        lambda folder: filled_cache(folder, lambda shard: os.truncate(shard, 20)),
        r"shard-.*\.safetensors is damaged .*delete the folder",
    ),
    ("23-cache-nan-targets", lambda folder: filled_cache(folder, nan_targets), r"holds NaN or infinite targets"),
]


@pytest.mark.parametrize("prepare, pattern", [row[1:] for row in CACHE_ROWS], ids=[row[0] for row in CACHE_ROWS])
def test_teacher_cache_refuses_what_it_did_not_write(prepare, pattern, tmp_path):
    from alhubert.training.teacher_cache import TeacherCache, TeacherCacheError

    folder = tmp_path / "cache"
    folder.mkdir()
    prepare(folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(TeacherCacheError, match=pattern) as raised:
        cache = TeacherCache.for_teacher(folder, cache_tiny_teacher(), [2, 4], False)
        cache.lookup([("a", "sig-a")], 5)
    assert "\n" not in str(raised.value)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before, "cache files replaced or deleted"


def test_distill_refuses_a_teacher_cache_folder_it_did_not_write_in_one_line(demo_cache, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    foreign_manifest(cache)
    quick = [value if value != "16000" else "0" for value in QUICK]  # uncropped clips: the cache's condition
    code, stderr = run_distill(
        [
            "--librispeech_root",
            str(corpus(tmp_path / "corpus")),
            "--output_dir",
            str(tmp_path / "out"),
            "--teacher_cache_dir",
            str(cache),
            *quick,
        ],
        capsys,
    )
    lines = stderr_lines(stderr)
    assert code == 1 and "Traceback" not in stderr
    assert len(lines) == 1 and re.search(r"manifest\.json was not written by the teacher cache", lines[0]), lines
    assert (cache / "manifest.json").read_text() == '{"my": "own manifest"}'
