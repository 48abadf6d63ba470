"""Teacher targets computed once (`--teacher_cache_dir`), bf16 distillation, and the logged terms."""

import copy
import os

import numpy as np
import pytest
import soundfile
import torch
from datasets import Dataset
from helpers import tiny_config_kwargs
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from alhubert.training.arguments import DistillationConfig
from alhubert.training.data import AudioCollator
from alhubert.training.distillation import DistillationTrainer
from alhubert.training.student_init import init_student_from_teacher
from alhubert.training.teacher_cache import (
    UTTERANCE_KEYS,
    TeacherCache,
    TeacherCacheCollator,
    audio_signature,
    disk_bytes_per_hour,
)


def tiny_teacher(seed=0):
    kwargs = tiny_config_kwargs(num_hidden_layers=4, initializer_range=0.1)
    kwargs.pop("num_hidden_groups")
    torch.manual_seed(seed)
    return HubertModel(HubertConfig(**kwargs)).eval()


def rows(count=8, seed=0):
    generator = np.random.default_rng(seed)
    lengths = [8000 - 800 * (index % 3) for index in range(count)]
    return {
        "id": [f"utt-{index}" for index in range(count)],
        "audio": [{"array": generator.standard_normal(n).astype(np.float32), "sampling_rate": 16000} for n in lengths],
        "length": lengths,
    }


def collator(max_length_samples=16000):
    return AudioCollator(Wav2Vec2FeatureExtractor(return_attention_mask=True), max_length_samples=max_length_samples)


def make_trainer(
    tmp_path,
    cache_dir=None,
    teacher=None,
    dataset=None,
    epochs=1,
    layers=(2, 4),
    bf16=False,
    max_length_samples=16000,
    student=None,
    **kwargs,
):
    teacher = teacher if teacher is not None else tiny_teacher()
    student = student if student is not None else init_student_from_teacher(teacher, 2, 4)
    args = DistillationConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_train_epochs=epochs,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        learning_rate=1e-3,
        use_cpu=True,
        dataloader_pin_memory=False,
        bf16=bf16,
        seed=0,
        data_seed=0,
        student_layers=list(layers),
        teacher_layers=list(layers),
        teacher_cache_dir=cache_dir,
        **kwargs,
    )
    return DistillationTrainer(
        model=student,
        args=args,
        teacher=teacher,
        train_dataset=dataset if dataset is not None else Dataset.from_dict(rows()),
        data_collator=collator(max_length_samples),
    )


def count_calls(model):
    calls = []
    model.register_forward_hook(lambda module, inputs, outputs: calls.append(1))
    return calls


def test_cached_targets_give_the_live_teachers_loss(tmp_path):
    trainer = make_trainer(tmp_path, cache_dir=str(tmp_path / "cache"))
    calls = count_calls(trainer.teacher)
    batch = trainer.data_collator([{key: value[index] for key, value in rows().items()} for index in range(4)])
    assert [key for key, _ in batch[UTTERANCE_KEYS]] == ["utt-0", "utt-1", "utt-2", "utt-3"]
    trainer.model.train()
    torch.manual_seed(0)
    live = trainer.compute_loss(trainer.model, batch)
    assert len(calls) == 1 and len(trainer.teacher_cache) == 4
    trainer.teacher_cache.flush()
    torch.manual_seed(0)  # same dropout masks
    cached = trainer.compute_loss(trainer.model, batch)
    assert len(calls) == 1  # the teacher did not run
    assert trainer.teacher_cache.hits == 1
    torch.testing.assert_close(cached, live, rtol=2e-3, atol=1e-3)  # float16 storage
    # a reopened cache reads the shard written by flush()
    reopened = TeacherCache.for_teacher(tmp_path / "cache", trainer.teacher, [2, 4], False)
    assert len(reopened) == 4 and reopened.lookup(batch[UTTERANCE_KEYS], 25) is not None


def test_the_teacher_runs_in_the_first_epoch_only(tmp_path):
    trainer = make_trainer(tmp_path, cache_dir=str(tmp_path / "cache"), epochs=3)
    calls = count_calls(trainer.teacher)
    trainer.train()
    assert trainer.state.global_step == 6
    assert len(calls) == 2  # 8 clips in batches of 4: two teacher passes, then only the cache
    assert trainer.teacher_cache.hits == 4 and trainer.teacher_cache.misses == 2
    assert any(name.startswith("shard-") for name in os.listdir(tmp_path / "cache"))
    # a new run with the same teacher, layers and audio reuses the shards: no teacher pass at all
    again = make_trainer(tmp_path, cache_dir=str(tmp_path / "cache"), epochs=1)
    calls_again = count_calls(again.teacher)
    again.train()
    assert len(calls_again) == 0


def test_the_cache_is_recomputed_when_the_teacher_layers_or_audio_change(tmp_path):
    cache_dir = str(tmp_path / "cache")
    trainer = make_trainer(tmp_path, cache_dir=cache_dir)
    trainer.train()
    assert len(TeacherCache.for_teacher(cache_dir, trainer.teacher, [2, 4], False)) == 8
    # other layers, other teacher weights, other pre-LN setting: the stored targets are dropped
    assert len(make_trainer(tmp_path, cache_dir=cache_dir, layers=(1, 3)).teacher_cache) == 0
    trainer = make_trainer(tmp_path, cache_dir=cache_dir)
    trainer.train()
    assert len(make_trainer(tmp_path, cache_dir=cache_dir, teacher=tiny_teacher(seed=1)).teacher_cache) == 0
    # changed audio under the same ids: those utterances are recomputed
    trainer = make_trainer(tmp_path, cache_dir=cache_dir)
    trainer.train()
    changed = make_trainer(tmp_path, cache_dir=cache_dir, dataset=Dataset.from_dict(rows(seed=1)))
    calls = count_calls(changed.teacher)
    changed.train()
    assert len(calls) == 2


def test_audio_signature_of_a_file_follows_its_contents(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, np.zeros(1600, dtype=np.float32), 16000)
    before = audio_signature({"path": str(path), "bytes": None})
    soundfile.write(path, np.ones(3200, dtype=np.float32) * 0.1, 16000)
    assert audio_signature({"path": str(path), "bytes": None}) != before
    assert audio_signature({"path": None, "bytes": b"x"}) != audio_signature({"path": None, "bytes": b"y"})


def test_the_cache_is_refused_when_clips_would_be_cropped_or_ids_are_missing(tmp_path):
    with pytest.raises(ValueError, match="cropped"):
        make_trainer(tmp_path, cache_dir=str(tmp_path / "cache"), max_length_samples=7500)
    with pytest.raises(ValueError, match="mask_padding"):
        DistillationConfig(teacher_cache_dir=str(tmp_path), mask_padding=False)
    wrapped = TeacherCacheCollator(collator())
    row = {key: value[0] for key, value in rows().items() if key != "id"}
    with pytest.raises(ValueError, match="'id'"):
        wrapped([row])
    with pytest.raises(ValueError, match="cropped"):
        TeacherCacheCollator(collator(max_length_samples=4000))([{**row, "id": "a"}])
    with pytest.raises(ValueError, match="max_length_samples"):
        TeacherCacheCollator(lambda batch: batch)


def test_disk_cost_formula_matches_a_real_cache(tmp_path):
    trainer = make_trainer(tmp_path, cache_dir=str(tmp_path / "cache"))
    trainer.train()
    stored = sum(
        os.path.getsize(tmp_path / "cache" / name)
        for name in os.listdir(tmp_path / "cache")
        if name.startswith("shard-")
    )
    seconds = sum(rows()["length"]) / 16000
    expected = disk_bytes_per_hour(2, 32) * seconds / 3600  # 50 frames/s x 2 layers x 32 wide x 2 bytes
    assert expected * 0.95 < stored < expected * 1.05 + 4096  # frames: 24 or 25 per 0.5 s, + the header
    assert disk_bytes_per_hour(6, 768) == pytest.approx(1.6589e9, rel=1e-4)


def test_bf16_autocast_distillation_is_close_to_float32(tmp_path):
    """One forward pass of the distillation loss under the Trainer's bf16 autocast, against a float64 reference.

    Dropout off (eval mode), and a shape that is not degenerate (48 channels per positional-convolution group, as in
    HuBERT Base; torch's bf16 grouped conv1d on Intel AMX is wrong for 8). The tolerance comes from the float64
    reference, not from one CPU's kernels: 4 x the loss change caused by rounding the weights and the audio to bf16
    (computed exactly, in float64), and never below bf16's unit roundoff (2**-9) of the loss.
    """
    kwargs = tiny_config_kwargs(
        num_hidden_layers=4,
        hidden_size=96,
        num_attention_heads=4,
        intermediate_size=192,
        conv_dim=(64,) * 7,
        num_conv_pos_embeddings=32,
        num_conv_pos_embedding_groups=2,
        initializer_range=0.1,
    )
    kwargs.pop("num_hidden_groups")
    torch.manual_seed(0)
    teacher = HubertModel(HubertConfig(**kwargs)).eval()
    student = init_student_from_teacher(teacher, 2, 4).eval()
    batch = collator()([{"audio": row} for row in rows(count=4)["audio"]])

    def loss(bf16=False, dtype=torch.float32, round_to_bf16=False):
        models = [copy.deepcopy(model).to(dtype) for model in (teacher, student)]
        inputs = {name: value.to(dtype) if value.is_floating_point() else value for name, value in batch.items()}
        if round_to_bf16:
            for parameter in (p for model in models for p in model.parameters()):
                parameter.data = parameter.data.to(torch.bfloat16).to(dtype)
            inputs["input_values"] = inputs["input_values"].to(torch.bfloat16).to(dtype)
        trainer = make_trainer(tmp_path, teacher=models[0], student=models[1], bf16=bf16)
        with torch.no_grad(), trainer.accelerator.autocast():
            return trainer.compute_loss(trainer.model.eval(), inputs).item()

    reference = loss(dtype=torch.float64)
    tolerance = 4 * abs(loss(dtype=torch.float64, round_to_bf16=True) - reference) + 2**-8 * abs(reference)
    float32, bf16 = loss(), loss(bf16=True)
    assert float32 == pytest.approx(reference, rel=1e-5)
    assert abs(bf16 - reference) <= tolerance, f"bf16 {bf16} vs float64 {reference} (tolerance {tolerance:.3g})"
    assert bf16 != float32  # autocast did run in bf16


def test_processes_see_each_others_shards_after_a_refresh(tmp_path):
    teacher = tiny_teacher()
    first = TeacherCache.for_teacher(tmp_path, teacher, [2, 4], False, rank=0)
    second = TeacherCache.for_teacher(tmp_path, teacher, [2, 4], False, rank=1)
    keys = [("a", "sig-a"), ("b", "sig-b")]
    states = [torch.randn(2, 5, 32), torch.randn(2, 5, 32)]
    first.store(keys, states, [5, 3])
    first.flush()
    assert second.lookup(keys, 5) is None
    second.refresh()
    cached = second.lookup(keys, 5)
    torch.testing.assert_close(cached[1][0], states[1][0], rtol=1e-3, atol=1e-3)
    assert torch.equal(cached[0][1, 3:], torch.zeros(2, 32))  # b's padded frames are zeros
    assert second.lookup([("a", "other audio"), ("b", "sig-b")], 5) is None
