"""HuBERT pre-training (alhubert.training.hubert_pretraining, kmeans_targets, run_pretrain_hubert) on tiny models and
the bundled demo corpus: masked-only loss, label / frame alignment, the loss falls, resume, two processes, teacher."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ACCELERATE_TWO_CPU_PROCESSES
from safetensors.torch import load_file
from transformers import AutoModel, HubertConfig, HubertModel

from alhubert.training import kmeans_targets, run_pretrain_hubert
from alhubert.training.hubert_pretraining import (
    HEAD_DIR,
    HubertForPreTraining,
    PretrainingHeadConfig,
    align_labels_to_frames,
    frame_counts,
    hubert_config,
)


REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "data" / "demo_corpus"
DATA = [
    "--librispeech_root",
    str(CORPUS),
    "--librispeech_sets",
    "train-clean-demo",
    "--eval_librispeech_sets",
    "dev-clean-demo",
    "--max_train_samples",
    "24",
    "--max_eval_samples",
    "8",
]
PRETRAIN = [
    *DATA,
    "--model_preset",
    "demo",
    "--final_dim",
    "32",
    "--max_steps",
    "24",
    "--per_device_train_batch_size",
    "8",
    "--learning_rate",
    "3e-3",
    "--warmup_steps",
    "2",
    "--logging_steps",
    "4",
    "--save_steps",
    "12",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--eval_strategy",
    "steps",
    "--eval_steps",
    "8",
    "--dataloader_num_workers",
    "0",
    "--seed",
    "0",
]
CLUSTERS = 12


def tiny_model(**head) -> HubertForPreTraining:
    torch.manual_seed(0)
    model = HubertForPreTraining(
        hubert_config("demo", num_hidden_layers=2), PretrainingHeadConfig(num_classes=[7], final_dim=16, **head)
    )
    return model.eval()


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("targets") / "mfcc"
    kmeans_targets.main(
        [*DATA, "--num_clusters", str(CLUSTERS), "--kmeans_init", "3", "--output_dir", str(output_dir)]
    )
    return output_dir


@pytest.fixture(scope="module")
def pretrained(targets, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("pretrain") / "uninterrupted"
    trainer = run_pretrain_hubert.main(
        [*PRETRAIN, "--labels_dir", str(targets), "--output_dir", str(output_dir), "--eval_on_start", "true"]
    )
    return trainer, output_dir


def test_only_masked_frames_count_by_default_and_padding_never():
    model = tiny_model()
    inputs = torch.randn(2, 16000)
    attention_mask = torch.ones(2, 16000, dtype=torch.long)
    attention_mask[1, 9000:] = 0
    frames = int(frame_counts(model.config, 16000))
    real = int(frame_counts(model.config, 9000))
    mask = torch.zeros(2, frames, dtype=torch.bool)
    mask[:, 5:25] = True
    labels = torch.randint(0, 7, (2, frames))
    changed = labels.clone()
    changed[~mask] = (changed[~mask] + 1) % 7  # every unmasked frame gets another label
    with torch.no_grad():
        loss = model(inputs, attention_mask, labels, mask_time_indices=mask).loss
        assert model(inputs, attention_mask, changed, mask_time_indices=mask).loss == loss
        padded = labels.clone()
        padded[1, real:] = (padded[1, real:] + 3) % 7  # padding frames of row 1, masked ones included
        padded_mask = mask.clone()
        padded_mask[1, real:] = True
        masked_labels = labels.clone()
        masked_labels[mask] = (masked_labels[mask] + 1) % 7
        assert model(inputs, attention_mask, masked_labels, mask_time_indices=mask).loss != loss
    weighted = tiny_model(unmasked_weight=0.5)
    with torch.no_grad():
        first = weighted(inputs, attention_mask, labels, mask_time_indices=mask)
        second = weighted(inputs, attention_mask, changed, mask_time_indices=mask)
        assert first.masked_loss == second.masked_loss and first.unmasked_loss != second.unmasked_loss
        assert torch.isclose(first.loss, first.masked_loss + 0.5 * first.unmasked_loss)
        # labels of padding frames never count, masked or not
        with_padding = weighted(inputs, attention_mask, padded, mask_time_indices=padded_mask)
        base = weighted(inputs, attention_mask, labels, mask_time_indices=padded_mask)
        assert with_padding.loss == base.loss


def test_feature_grad_mult_scales_only_the_conv_stack_gradient():
    inputs, labels = torch.randn(2, 8000), torch.randint(0, 7, (2, 24))
    mask = torch.zeros(2, 24, dtype=torch.bool)
    mask[:, 4:14] = True
    gradients = []
    for scale in (1.0, 0.1):
        model = tiny_model(feature_grad_mult=scale)  # eval mode: no dropout, the same forward twice
        model(inputs, labels=labels, mask_time_indices=mask).loss.backward()
        gradients.append(
            {
                name: parameter.grad.clone()
                for name, parameter in model.named_parameters()
                if parameter.grad is not None
            }
        )
    full, scaled = gradients
    conv = [name for name in full if name.startswith("hubert.feature_extractor.")]
    assert conv and set(full) == set(scaled)
    for name in full:
        expected = full[name] * (0.1 if name in conv else 1.0)
        torch.testing.assert_close(scaled[name], expected, rtol=1e-4, atol=1e-7, msg=name)
    with pytest.raises(ValueError, match="feature_grad_mult"):
        PretrainingHeadConfig(feature_grad_mult=0.0)


def test_span_masks_cover_real_frames_only():
    model = tiny_model()
    frame_mask = torch.ones(3, 60, dtype=torch.bool)
    frame_mask[1, 30:] = False
    frame_mask[2, 6:] = False  # shorter than a span
    np.random.seed(0)
    mask = model.compute_mask(frame_mask)
    assert not (mask & ~frame_mask).any()
    assert mask[0].sum() >= 10 and mask[1, :30].sum() >= 10  # 0.8 x 60 / 10 spans of 10 frames, overlapping


@pytest.mark.parametrize("samples", [400, 401, 719, 720, 721, 1119, 16001, 23457])
def test_labels_and_frames_align_for_odd_lengths(samples):
    config = hubert_config("demo", num_hidden_layers=1)
    frames = int(frame_counts(config, samples))
    with torch.no_grad():
        hidden = HubertModel(config).eval()(torch.randn(1, samples)).last_hidden_state
    assert hidden.shape[1] == frames
    mfcc = kmeans_targets.mfcc_features(np.random.default_rng(0).standard_normal(samples).astype(np.float32))
    assert mfcc.shape == ((samples - 400) // 160 + 1, 39)
    labels_100hz = np.arange(len(mfcc))
    aligned = align_labels_to_frames(labels_100hz, frames)
    assert len(aligned) == frames and (aligned == 2 * np.arange(frames)).all()


def test_kmeans_targets_label_every_utterance_at_the_model_frame_rate(targets):
    labels, manifest = kmeans_targets.read_labels(targets)
    assert manifest["features"] == "mfcc" and manifest["num_clusters"] == CLUSTERS
    assert manifest["labelled_utterances"] == len(labels) == 32  # 24 train + 8 dev
    assert manifest["clusters_used"] > CLUSTERS // 2
    import soundfile

    for path in sorted((CORPUS / "train-clean-demo").rglob("*.flac"))[:24]:
        if path.stem in labels:
            frames = int(frame_counts(HubertConfig(), soundfile.info(str(path)).frames))
            assert len(labels[path.stem]) == frames, path.stem
    assert (targets / "centroids.safetensors").is_file()


@pytest.mark.slow
def test_pretraining_lowers_the_loss_and_saves_a_plain_hubert_folder(pretrained):
    trainer, output_dir = pretrained
    eval_losses = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(eval_losses) >= 4
    assert eval_losses[-1] < 0.8 * eval_losses[0], eval_losses
    # the masked-frame accuracy and the loss parts are logged, in training and in evaluation
    train_logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    eval_logs = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert all(0 <= entry["masked_accuracy"] <= 1 and entry["unmasked_loss"] == 0 for entry in train_logs)
    assert all(abs(entry["eval_masked_loss"] - entry["eval_loss"]) < 1e-3 for entry in eval_logs)
    assert eval_logs[-1]["eval_masked_accuracy"] > eval_logs[0]["eval_masked_accuracy"]
    model, info = HubertModel.from_pretrained(output_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert type(AutoModel.from_pretrained(output_dir)) is HubertModel
    assert json.loads((output_dir / "config.json").read_text())["architectures"] == ["HubertModel"]
    assert (output_dir / "preprocessor_config.json").is_file()
    head = load_file(output_dir / HEAD_DIR / "model.safetensors")
    assert head["label_embeddings.0.weight"].shape == (CLUSTERS, 32) and not any(k.startswith("hubert") for k in head)
    reloaded = HubertForPreTraining.from_encoder_and_head(output_dir)
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.slow
def test_resumed_run_ends_with_the_same_weights(pretrained, targets, tmp_path):
    _, uninterrupted = pretrained
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(uninterrupted / "checkpoint-12", interrupted / "checkpoint-12")
    run_pretrain_hubert.main(
        [
            *PRETRAIN,
            "--labels_dir",
            str(targets),
            "--output_dir",
            str(interrupted),
            "--eval_on_start",
            "true",
            "--resume_from_checkpoint",
            "last",
        ]
    )
    for folder in (".", HEAD_DIR):
        expected = load_file(uninterrupted / folder / "model.safetensors")
        actual = load_file(interrupted / folder / "model.safetensors")
        assert expected.keys() == actual.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


@pytest.mark.slow
def test_the_output_is_a_teacher_for_distill_and_feeds_the_next_iteration(pretrained, targets, demo_cache, tmp_path):
    from alhubert.training import run_distillation

    _, hubert = pretrained
    trainer = run_distillation.main(
        [
            "--teacher_name_or_path",
            str(hubert),
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
            *DATA[:4],
            "--max_train_samples",
            "8",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--output_dir",
            str(tmp_path / "student"),
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--save_strategy",
            "no",
            "--dataloader_num_workers",
            "0",
        ]
    )
    assert trainer.state.global_step == 2
    student = AutoModel.from_pretrained(tmp_path / "student")
    teacher = HubertModel.from_pretrained(hubert)
    torch.testing.assert_close(
        student.feature_projection.projection.weight, teacher.feature_projection.projection.weight, rtol=0, atol=1e-2
    )
    # iteration 2: k-means on the model's own hidden states 2
    manifest = kmeans_targets.main(
        [
            *DATA,
            "--num_clusters",
            "8",
            "--kmeans_init",
            "1",
            "--model_name_or_path",
            str(hubert),
            "--layer",
            "2",
            "--output_dir",
            str(tmp_path / "it2"),
        ]
    )
    assert manifest["features"] == "hidden_states" and manifest["layer"] == 2
    labels, _ = kmeans_targets.read_labels(tmp_path / "it2")
    first, _ = kmeans_targets.read_labels(targets)
    assert labels.keys() == first.keys()
    assert all(len(labels[key]) == len(first[key]) for key in labels)


RANK_DUMP = """
import os, sys
from alhubert.training import run_pretrain_hubert
from safetensors.torch import save_file
trainer = run_pretrain_hubert.main(sys.argv[1:])
state = {{key: value.detach().contiguous() for key, value in trainer.model.hubert.state_dict().items()}}
name = f"rank{{trainer.args.process_index}}-of-{{trainer.args.world_size}}.safetensors"
save_file(state, os.path.join({dump_dir!r}, name))
"""


@pytest.mark.slow
def test_accelerate_launch_two_processes_agree(targets, tmp_path):
    script = tmp_path / "pretrain_and_dump.py"
    script.write_text(RANK_DUMP.format(dump_dir=str(tmp_path)))
    command = [
        *ACCELERATE_TWO_CPU_PROCESSES,
        str(script),
        *PRETRAIN,
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "4",
        "--labels_dir",
        str(targets),
        "--output_dir",
        str(tmp_path / "ddp"),
        "--use_cpu",
        "true",
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = load_file(tmp_path / "rank0-of-2.safetensors"), load_file(tmp_path / "rank1-of-2.safetensors")
    saved = load_file(tmp_path / "ddp" / "model.safetensors")
    initial = HubertModel(hubert_config("demo")).state_dict()
    for key in rank0:
        torch.testing.assert_close(rank1[key], rank0[key], rtol=0, atol=0, msg=key)
        torch.testing.assert_close(saved[key], rank0[key], rtol=0, atol=0, msg=key)
    assert json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())["global_step"] == 3
    assert set(saved) == set(initial)
