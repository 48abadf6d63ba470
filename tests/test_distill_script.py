"""`alhubert distill` (alhubert.training.run_distillation) end to end on the bundled demo corpus: loss drop, saved
directory, resume, two-process DDP."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import ACCELERATE_TWO_CPU_PROCESSES
from safetensors.torch import load_file
from transformers import AutoModel

from alhubert.training import run_distillation as distill
from alhubert.training.arguments import CONFIGS_DIR


REPO_ROOT = Path(__file__).resolve().parent.parent


CORPUS = REPO_ROOT / "data" / "demo_corpus"
# A few quick steps: 16 one-second crops, batches of 4, a checkpoint half-way.
QUICK = [
    "--librispeech_root",
    str(CORPUS),
    "--max_train_samples",
    "16",
    "--max_eval_samples",
    "8",
    "--max_length_samples",
    "16000",
    "--per_device_train_batch_size",
    "4",
    "--per_device_eval_batch_size",
    "8",
    "--max_steps",
    "16",
    "--save_steps",
    "8",
    "--logging_steps",
    "8",
    "--learning_rate",
    "2e-3",
    "--disable_tqdm",
    "true",
]


@pytest.fixture(scope="module")
def quick_run(demo_cache, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("runs") / "uninterrupted"
    trainer = distill.main([str(CONFIGS_DIR / "demo.yaml"), *QUICK, "--output_dir", str(output_dir)])
    return trainer, output_dir


def test_arguments_from_yaml_json_and_flags(tmp_path):
    yaml_file = tmp_path / "args.yaml"
    yaml_file.write_text("librispeech_root: /data\nstudent_layers: [1, 3]\nteacher_layers: [2, 6]\nmax_steps: 5\n")
    model_args, data_args, training_args, _ = distill.parse_arguments(
        [str(yaml_file), "--max_steps", "7", "--num_hidden_groups", "3"]
    )
    assert training_args.student_layers == [1, 3] and training_args.teacher_layers == [2, 6]
    assert training_args.max_steps == 7 and model_args.num_hidden_groups == 3
    assert data_args.librispeech_root == "/data"
    json_file = tmp_path / "args.json"
    json_file.write_text(json.dumps({"librispeech_root": "/data", "loss_type": "l1"}))
    assert distill.parse_arguments([str(json_file)])[2].loss_type == "l1"
    yaml_file.write_text("librispeech_root: /data\nnot_an_argument: 1\n")
    with pytest.raises(ValueError, match="not_an_argument"):
        distill.parse_arguments([str(yaml_file)])
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        distill.parse_arguments([str(tmp_path / "missing.yaml")])


def test_shipped_configs_parse_with_the_paper_recipe():
    for name in ("small", "middle", "large"):
        model_args, data_args, training_args, _ = distill.parse_arguments([name])
        assert model_args.student_preset == name
        assert model_args.teacher_name_or_path == "facebook/hubert-base-ls960"
        assert data_args.librispeech_sets == "train-clean-100,train-clean-360,train-other-500"
        assert training_args.student_layers == training_args.teacher_layers == [2, 4, 6, 8, 10, 12]
        assert (training_args.learning_rate, training_args.adam_beta2, training_args.adam_epsilon) == (
            2e-4,
            0.98,
            1e-6,
        )
        assert (training_args.max_steps, training_args.per_device_train_batch_size) == (200000, 8)
        assert (training_args.warmup_steps, training_args.max_grad_norm, training_args.weight_decay) == (
            0.07,
            5.0,
            1e-6,
        )
        assert training_args.feature_grad_mult == 0.1 and not training_args.bf16


@pytest.mark.slow
def test_short_distillation_lowers_the_loss_and_saves_a_complete_model(quick_run):
    trainer, output_dir = quick_run
    eval_losses = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(eval_losses) >= 2
    # 16 steps from the teacher-initialised student: the dev loss must drop by at least 20 %
    assert eval_losses[-1] < 0.8 * eval_losses[0], eval_losses
    for name in (
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "modeling_alhubert.py",
        "configuration_alhubert.py",
        "README.md",
    ):
        assert (output_dir / name).is_file(), name
    card = (output_dir / "README.md").read_text()
    assert "RANDOM weights" in card and "Training loss at step 16" in card and "2->2, 4->4" in card
    # the demo card names its data truthfully and claims no Hub model or dataset it did not use
    metadata = card.split("---")[1]
    assert "base_model" not in metadata and "librispeech_asr" not in metadata and "demo-random-teacher" not in metadata
    assert "synthesised with espeak-ng" in card and "not LibriSpeech" in card
    assert "custom_pipelines" in (output_dir / "config.json").read_text()
    assert (output_dir / "pipeline_audio_features.py").is_file() and (output_dir / "audio.py").is_file()
    model = AutoModel.from_pretrained(output_dir)
    assert (model.config.num_hidden_groups, model.config.num_hidden_layers) == (2, 4)
    with pytest.raises(ValueError, match="is not empty"):
        distill.main([str(CONFIGS_DIR / "demo.yaml"), *QUICK, "--output_dir", str(output_dir)])


@pytest.mark.slow
def test_resumed_run_ends_with_the_same_weights(quick_run, tmp_path):
    _, uninterrupted = quick_run
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    # the state of a run killed while saving its second checkpoint: checkpoint-16 has its weights but not the
    # optimizer, scheduler and trainer_state.json; "last" must resume from checkpoint-8 (issue 13, case 10)
    shutil.copytree(uninterrupted / "checkpoint-8", interrupted / "checkpoint-8")
    (interrupted / "checkpoint-16").mkdir()
    shutil.copy(uninterrupted / "checkpoint-16" / "model.safetensors", interrupted / "checkpoint-16")
    distill.main(
        [str(CONFIGS_DIR / "demo.yaml"), *QUICK, "--output_dir", str(interrupted), "--resume_from_checkpoint", "last"]
    )
    expected = load_file(uninterrupted / "model.safetensors")
    actual = load_file(interrupted / "model.safetensors")
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


RANK_DUMP = """
import os, sys
from alhubert.training import run_distillation as distill
from safetensors.torch import save_file
trainer = distill.main(sys.argv[1:])
state = {{key: value.detach().contiguous() for key, value in trainer.student.state_dict().items()}}
name = f"rank{{trainer.args.process_index}}-of-{{trainer.args.world_size}}.safetensors"
save_file(state, os.path.join({dump_dir!r}, name))
"""


@pytest.mark.slow
def test_accelerate_launch_two_processes_agree(demo_cache, tmp_path):
    script = tmp_path / "distill_and_dump.py"
    script.write_text(RANK_DUMP.format(dump_dir=str(tmp_path)))
    command = [
        *ACCELERATE_TWO_CPU_PROCESSES,
        str(script),
        str(CONFIGS_DIR / "demo.yaml"),
        *QUICK,
        "--max_steps",
        "4",
        "--output_dir",
        str(tmp_path / "ddp"),
        "--eval_on_start",
        "false",
        "--use_cpu",
        "true",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = load_file(tmp_path / "rank0-of-2.safetensors"), load_file(tmp_path / "rank1-of-2.safetensors")
    saved = load_file(tmp_path / "ddp" / "model.safetensors")
    for key in rank0:
        torch.testing.assert_close(rank1[key], rank0[key], rtol=0, atol=0, msg=key)
        torch.testing.assert_close(saved[key], rank0[key], rtol=0, atol=0, msg=key)
    state = json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
