"""A distillation checkpoint written before the Trainer rework (tests/data/distillation_checkpoint_v0) resumes with
the current code to the same final weights, and the final folder keeps its file names and tensor keys."""

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from alhubert.training import run_distillation as distill


REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "data" / "distillation_checkpoint_v0"


def run_arguments(output_dir: Path) -> list[str]:
    return [
        "--teacher_name_or_path",
        str(FIXTURE / "teacher"),
        "--teacher_dtype",
        "float32",
        "--student_preset",
        "none",
        "--num_hidden_groups",
        "1",
        "--num_hidden_layers",
        "2",
        "--librispeech_root",
        str(REPO_ROOT / "data" / "demo_corpus"),
        "--librispeech_sets",
        "train-clean-demo",
        "--max_train_samples",
        "8",
        "--max_length_samples",
        "16000",
        "--student_layers",
        "1",
        "2",
        "--teacher_layers",
        "1",
        "2",
        "--prediction_heads",
        "true",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "4",
        "--save_steps",
        "2",
        "--logging_steps",
        "1",
        "--learning_rate",
        "2e-3",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--seed",
        "0",
        "--dataloader_pin_memory",
        "false",
        "--use_cpu",
        "true",
        "--output_dir",
        str(output_dir),
    ]


def test_a_checkpoint_of_the_previous_trainer_resumes_to_the_same_weights(tmp_path):
    output_dir = tmp_path / "run"
    shutil.copytree(FIXTURE / "checkpoint-2", output_dir / "checkpoint-2")
    distill.main([*run_arguments(output_dir), "--resume_from_checkpoint", "last"])
    expected_files = set((FIXTURE / "expected_final" / "files.txt").read_text().split())
    actual_files = {
        str(path.relative_to(output_dir))
        for path in output_dir.rglob("*")
        if path.is_file() and not path.relative_to(output_dir).parts[0].startswith("checkpoint-")
    }
    assert expected_files <= actual_files, expected_files - actual_files
    for name in ("model.safetensors", "prediction_heads/model.safetensors"):
        expected, actual = load_file(FIXTURE / "expected_final" / name), load_file(output_dir / name)
        assert actual.keys() == expected.keys(), name
        for key in expected:  # two optimizer steps after the resumed state: float32 rounding of this CPU's kernels
            torch.testing.assert_close(actual[key], expected[key], msg=f"{name}: {key}")
    # the new checkpoint has the old one's layout (what Trainer and this test read back)
    for name in ("model.safetensors", "prediction_heads/model.safetensors", "optimizer.pt", "trainer_state.json"):
        assert (output_dir / "checkpoint-4" / name).is_file(), name
    assert (
        load_file(output_dir / "checkpoint-4" / "model.safetensors").keys()
        == load_file(FIXTURE / "checkpoint-2" / "model.safetensors").keys()
    )


def test_resuming_loads_the_checkpoint_exactly(tmp_path):
    """With max_steps equal to the checkpoint's step nothing is trained: the saved model is the checkpoint's."""
    output_dir = tmp_path / "run"
    shutil.copytree(FIXTURE / "checkpoint-2", output_dir / "checkpoint-2")
    arguments = run_arguments(output_dir)
    arguments[arguments.index("--max_steps") + 1] = "2"
    distill.main([*arguments, "--resume_from_checkpoint", "last"])
    for name in ("model.safetensors", "prediction_heads/model.safetensors"):
        expected, actual = load_file(FIXTURE / "checkpoint-2" / name), load_file(output_dir / name)
        assert actual.keys() == expected.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=f"{name}: {key}")
