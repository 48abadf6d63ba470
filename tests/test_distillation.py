"""The distillation loss (against the original's fixture values) and the DistillationTrainer's checks and mechanics."""

import copy
import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from helpers import padded_batch, tiny_config_kwargs
from safetensors.torch import load_file
from transformers import AutoModel, HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.models.fast_cpu_path import uses_fast_cpu_path
from alhubert.training.arguments import DistillationConfig
from alhubert.training.distillation import DistillationTrainer, distillation_loss
from alhubert.training.student_init import init_student_from_teacher


FIXTURES = Path(__file__).parent / "fixtures" / "original"


def load_loss_case(name):
    tensors = load_file(FIXTURES / f"{name}_reference.safetensors")
    settings = json.loads((FIXTURES / f"{name}_reference.json").read_text())["alhubert_config"]
    students = [tensors[f"loss_case.student.{k}"] for k in range(3)]
    teachers = [tensors[f"loss_case.teacher.{k}"] for k in range(3)]
    return students, teachers, settings, tensors["loss_case.rec_loss"], tensors["loss_case.sim_loss"]


@pytest.mark.parametrize("name", ["tiny_postln", "tiny_preln"])
def test_loss_reproduces_the_original_on_the_fixture_cases(name):
    students, teachers, settings, rec_loss, sim_loss = load_loss_case(name)
    assert students[0].shape[1] != teachers[0].shape[1]  # the cases exercise the trimming
    result = distillation_loss(
        students, teachers, frame_mask=None, loss_type=settings["loss_type"], cosine_weight=settings["cosine_loss"]
    )
    assert result.rec.shape == (3,)
    torch.testing.assert_close(result.rec.sum(), rec_loss, rtol=0, atol=1e-5)
    if settings["cosine_loss"] > 0:  # the original only computes the cosine term when it is weighted
        torch.testing.assert_close(result.sim.sum(), sim_loss, rtol=0, atol=1e-5)
    torch.testing.assert_close(result.loss, rec_loss + settings["cosine_loss"] * sim_loss, rtol=0, atol=1e-5)


def test_masked_loss_ignores_padded_frames_and_equals_unmasked_without_padding():
    students, teachers, _, _, _ = load_loss_case("tiny_postln")
    frame_mask = torch.ones(2, 25, dtype=torch.long)
    frame_mask[1, 15:] = 0
    masked = distillation_loss(students, teachers, frame_mask)
    changed = [state.clone() for state in students]
    for state in changed:
        state[1, 15:] = 100.0  # garbage in the padding
    torch.testing.assert_close(distillation_loss(changed, teachers, frame_mask).loss, masked.loss)
    assert not torch.allclose(distillation_loss(changed, teachers).loss, distillation_loss(students, teachers).loss)
    # all frames real: the masked loss is the original's
    torch.testing.assert_close(
        distillation_loss(students, teachers, torch.ones(2, 25)).loss, distillation_loss(students, teachers).loss
    )


def test_distillation_arguments_are_checked():
    with pytest.raises(ValueError, match="same length"):
        DistillationConfig(student_layers=[2, 4], teacher_layers=[4])
    with pytest.raises(ValueError, match="loss_type"):
        DistillationConfig(loss_type="l3")
    with pytest.raises(ValueError, match="cosine_weight"):
        DistillationConfig(cosine_weight=-1.0)


def tiny_teacher(seed=0, **overrides):
    kwargs = {**tiny_config_kwargs(num_hidden_layers=4, initializer_range=0.1), **overrides}
    kwargs.pop("num_hidden_groups")
    torch.manual_seed(seed)
    return HubertModel(HubertConfig(**kwargs)).eval()


def audio_dataset(count=8, seconds=0.5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = [int(16000 * seconds) - 800 * (index % 3) for index in range(count)]
    return Dataset.from_dict({"input_values": [torch.randn(n, generator=generator).numpy() for n in lengths]})


def collate(rows):
    return Wav2Vec2FeatureExtractor(return_attention_mask=True)(
        [row["input_values"] for row in rows], sampling_rate=16000, padding=True, return_tensors="pt"
    )


def make_trainer(tmp_path, student=None, teacher=None, **kwargs):
    teacher = teacher if teacher is not None else tiny_teacher()
    student = (
        student
        if student is not None
        else init_student_from_teacher(teacher, 2, 4, hidden_dropout=0.0, attention_dropout=0.0)
    )
    args = DistillationConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=kwargs.pop("max_steps", 2),
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        learning_rate=1e-3,
        use_cpu=True,
        dataloader_pin_memory=False,
        **kwargs.pop("distillation", {"student_layers": [2, 4], "teacher_layers": [2, 4]}),
    )
    return DistillationTrainer(
        model=student, args=args, teacher=teacher, train_dataset=audio_dataset(), data_collator=collate, **kwargs
    )


def test_trainer_freezes_the_teacher_and_logs_per_pair_terms(tmp_path):
    trainer = make_trainer(tmp_path)
    assert not trainer.teacher.training
    assert not any(parameter.requires_grad for parameter in trainer.teacher.parameters())
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        for key in ("rec_2_2", "sim_2_2", "rec_4_4", "sim_4_4"):
            assert key in entry and entry[key] >= 0
        # the student's first 2 applications start as the teacher's first 2 layers: rec_2_2 may be exactly 0
        assert entry["sim_2_2"] > 0 and entry["rec_4_4"] > 0
        # the logged loss is the sum of the logged terms (cosine weight 1)
        terms = sum(value for key, value in entry.items() if key.startswith(("rec_", "sim_")))
        assert entry["loss"] == pytest.approx(terms, rel=1e-4)
    assert all(parameter.grad is None for parameter in trainer.teacher.parameters())


def test_teacher_dtype(tmp_path):
    trainer = make_trainer(tmp_path, teacher_dtype=torch.bfloat16)
    assert next(trainer.teacher.parameters()).dtype == torch.bfloat16
    batch = collate(audio_dataset(2))
    loss = trainer.compute_loss(trainer.model, batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def feature_encoder_grads(tmp_path, multiplier):
    torch.manual_seed(0)
    trainer = make_trainer(
        tmp_path,
        distillation={"student_layers": [2, 4], "teacher_layers": [2, 4], "feature_grad_mult": multiplier},
    )
    trainer.model.train()
    trainer.compute_loss(trainer.model, collate(audio_dataset(2))).backward()
    return [parameter.grad.clone() for parameter in trainer.student.feature_extractor.parameters()]


def test_feature_grad_mult_scales_the_feature_encoder_gradient(tmp_path):
    full = feature_encoder_grads(tmp_path, 1.0)
    scaled = feature_encoder_grads(tmp_path, 0.1)
    assert any(grad.abs().sum() > 0 for grad in full)
    for grad_full, grad_scaled in zip(full, scaled):
        torch.testing.assert_close(grad_scaled, 0.1 * grad_full, rtol=1e-4, atol=1e-4 * grad_full.abs().max().item())
    trainer = make_trainer(
        tmp_path, distillation={"student_layers": [2], "teacher_layers": [2], "feature_grad_mult": 0.0}
    )
    assert not any(parameter.requires_grad for parameter in trainer.student.feature_extractor.parameters())


def test_prediction_heads_for_a_narrower_student(tmp_path):
    teacher = tiny_teacher(hidden_size=48, num_attention_heads=4, intermediate_size=64)
    student = AlHubertModel(AlHubertConfig(**tiny_config_kwargs(num_hidden_layers=4)))
    with pytest.raises(ValueError, match="prediction_heads"):
        make_trainer(tmp_path, student=student, teacher=teacher)
    trainer = make_trainer(
        tmp_path,
        student=student,
        teacher=teacher,
        distillation={"student_layers": [2, 4], "teacher_layers": [2, 4], "prediction_heads": True},
    )
    trainer.train()
    trainer.save_model()
    heads = load_file(tmp_path / "prediction_heads" / "model.safetensors")
    assert heads["0.weight"].shape == (48, 32)
    reloaded = AutoModel.from_pretrained(tmp_path)
    torch.testing.assert_close(
        reloaded.state_dict()["encoder.layers.0.final_layer_norm.weight"],
        student.encoder.layers[0].final_layer_norm.weight.detach(),
    )


def test_pre_ln_targets_apply_the_next_layer_norm(tmp_path):
    teacher = tiny_teacher(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    student = init_student_from_teacher(teacher, 4)  # no sharing: the student is the teacher
    trainer = make_trainer(tmp_path, student=student, teacher=teacher)
    assert trainer.pre_ln_targets
    trainer.model.eval()
    loss = trainer.compute_loss(trainer.model, collate(audio_dataset(2)))
    # identical models: zero reconstruction error, cosine term at its minimum -log(sigmoid(1)) per pair
    floor = -torch.nn.functional.logsigmoid(torch.tensor(1.0)) * 2
    torch.testing.assert_close(loss, floor, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="pre-LN student"):
        make_trainer(tmp_path, teacher=teacher, student=AlHubertModel(AlHubertConfig(**tiny_config_kwargs())))


def test_bad_inputs_are_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"teacher_layers \[5\] out of range.*4 layers"):
        make_trainer(tmp_path, distillation={"student_layers": [2], "teacher_layers": [5]})
    with pytest.raises(ValueError, match=r"student_layers \[7\] out of range"):
        make_trainer(tmp_path, distillation={"student_layers": [7], "teacher_layers": [2]})
    with pytest.raises(TypeError, match="AlHubertModel"):
        make_trainer(tmp_path, student=tiny_teacher())
    student_fe = Wav2Vec2FeatureExtractor(do_normalize=False)
    with pytest.raises(ValueError, match="sampling_rate=8000"):
        make_trainer(
            tmp_path,
            processing_class=student_fe,
            teacher_feature_extractor=Wav2Vec2FeatureExtractor(sampling_rate=8000, do_normalize=False),
        )
    with pytest.raises(ValueError, match="do_normalize=True"):
        make_trainer(
            tmp_path,
            processing_class=student_fe,
            teacher_feature_extractor=Wav2Vec2FeatureExtractor(do_normalize=True),
        )


def test_mask_padding_switch(tmp_path):
    """Padded frames count only with mask_padding=False (the original); without padding both agree."""
    losses = {}
    for mask_padding in (True, False):
        trainer = make_trainer(
            tmp_path, distillation={"student_layers": [2, 4], "teacher_layers": [2, 4], "mask_padding": mask_padding}
        )
        trainer.model.eval()
        padded = dict(zip(("input_values", "attention_mask"), padded_batch((8000, 4000))))
        unpadded = dict(zip(("input_values", "attention_mask"), padded_batch((8000, 8000))))
        losses[mask_padding] = [trainer.compute_loss(trainer.model, batch) for batch in (padded, unpadded)]
    assert abs(losses[True][0] - losses[False][0]) > 1e-3
    torch.testing.assert_close(losses[True][1], losses[False][1])


def loss_and_grads(trainer, batch):
    trainer.model.train()
    torch.manual_seed(0)  # same dropout masks
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()  # the teacher's inference-mode targets may enter autograd
    grads = [parameter.grad.clone() for parameter in trainer.student.parameters() if parameter.grad is not None]
    return loss.detach(), grads


def test_fast_path_teacher_gives_the_plain_teachers_loss(tmp_path):
    teacher = tiny_teacher()
    student = init_student_from_teacher(teacher, 2, 4)  # dropout 0.1: the seeds must line up
    batch = dict(zip(("input_values", "attention_mask"), padded_batch((8000, 5000))))
    results = {}
    for fast_path in (False, True):
        trainer = make_trainer(
            tmp_path,
            student=copy.deepcopy(student),
            teacher=copy.deepcopy(teacher),
            distillation={"student_layers": [2, 4], "teacher_layers": [2, 4], "teacher_fast_path": fast_path},
        )
        assert type(trainer.teacher) is HubertModel and not trainer.teacher.training
        assert uses_fast_cpu_path(trainer.teacher.feature_extractor) is fast_path
        assert uses_fast_cpu_path(trainer.teacher.encoder.pos_conv_embed) is fast_path
        results[fast_path] = loss_and_grads(trainer, batch)
    plain_loss, plain_grads = results[False]
    loss, grads = results[True]
    assert plain_loss > 0.1
    torch.testing.assert_close(loss, plain_loss, rtol=0, atol=1e-5)
    assert len(grads) == len(plain_grads)
    for grad, plain_grad in zip(grads, plain_grads):
        torch.testing.assert_close(grad, plain_grad, rtol=1e-3, atol=1e-5)


def test_a_bfloat16_teacher_keeps_hubert_arithmetic(tmp_path):
    trainer = make_trainer(tmp_path, teacher_dtype=torch.bfloat16)
    assert next(trainer.teacher.parameters()).dtype == torch.bfloat16
    batch = dict(zip(("input_values", "attention_mask"), padded_batch((8000, 5000))))
    trainer.model.eval()
    assert torch.isfinite(trainer.compute_loss(trainer.model, batch))


def count_layer_calls(model):
    calls = []
    for layer in model.encoder.layers:
        layer.register_forward_hook(lambda module, args, output: calls.append(module))
    return calls


def test_the_student_stops_at_its_deepest_target_and_the_loss_is_unchanged(tmp_path):
    teacher = tiny_teacher()
    student = init_student_from_teacher(teacher, 2, 4, hidden_dropout=0.0, attention_dropout=0.0)
    trainer = make_trainer(
        tmp_path, student=student, teacher=teacher, distillation={"student_layers": [1, 2], "teacher_layers": [1, 3]}
    )
    student_calls, teacher_calls = count_layer_calls(trainer.student), count_layer_calls(trainer.teacher)
    inputs, mask = padded_batch((8000, 5000))
    trainer.model.eval()
    loss = trainer.compute_loss(trainer.model, {"input_values": inputs, "attention_mask": mask})
    assert len(student_calls) == 2 and len(teacher_calls) == 4  # the student stops at its deepest target
    with torch.no_grad():  # the full-depth runs give the same loss
        student_states = student(inputs, attention_mask=mask, output_hidden_states=True).hidden_states
        teacher_states = teacher(inputs, attention_mask=mask, output_hidden_states=True).hidden_states
    frame_mask = student._get_feature_vector_attention_mask(student_states[0].shape[1], mask)
    expected = distillation_loss(
        [student_states[1], student_states[2]], [teacher_states[1], teacher_states[3]], frame_mask
    )
    torch.testing.assert_close(loss, expected.loss, rtol=0, atol=1e-5)
