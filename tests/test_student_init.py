"""Initialising an ALHuBERT student from a Transformers HuBERT teacher (issue 3, point 3)."""

import pytest
import torch
from helpers import padded_batch, tiny_config_kwargs
from transformers import HubertConfig, HubertForCTC, HubertModel

from alhubert.models.fast_cpu_path import use_fast_cpu_path
from alhubert.training.student_init import init_student_from_teacher


def tiny_teacher(num_hidden_layers=4, seed=0, **overrides):
    kwargs = tiny_config_kwargs(num_hidden_layers=num_hidden_layers, mask_time_prob=0.05, **overrides)
    kwargs.pop("num_hidden_groups")
    torch.manual_seed(seed)
    return HubertModel(HubertConfig(**kwargs)).eval()


def use_hubert_arithmetic(model):
    """Bit equality needs HuBERT's own conv arithmetic (ALHuBERT's CPU fast paths match it to float32 rounding)."""
    use_fast_cpu_path(model, enabled=False)


@pytest.mark.parametrize("layer_sharing", ["cycle", "block"])
def test_copied_tensors_equal(layer_sharing):
    teacher = tiny_teacher(num_hidden_layers=4)
    student = init_student_from_teacher(teacher, num_hidden_groups=2, num_hidden_layers=6, layer_sharing=layer_sharing)
    assert (student.config.num_hidden_groups, student.config.num_hidden_layers) == (2, 6)
    assert student.config.layer_sharing == layer_sharing
    assert student.config.hidden_size == teacher.config.hidden_size
    teacher_state = teacher.state_dict()
    student_state = student.state_dict()
    copied = [key for key in student_state if key in teacher_state]
    assert {key.split(".")[0] for key in copied} == {
        "feature_extractor",
        "feature_projection",
        "encoder",
        "masked_spec_embed",
    }
    for key in copied:
        torch.testing.assert_close(student_state[key], teacher_state[key], rtol=0, atol=0, msg=key)
    # teacher layers beyond the distinct ones have no student counterpart
    assert not any(key.startswith("encoder.layers.2.") for key in student_state)
    assert any(key.startswith("encoder.layers.2.") for key in teacher_state)
    # every student tensor comes from the teacher
    assert set(student_state) <= set(teacher_state)


@pytest.mark.parametrize("do_stable_layer_norm", [False, True], ids=["post-ln", "pre-ln"])
def test_without_sharing_the_student_reproduces_the_teacher(do_stable_layer_norm):
    norm = {"feat_extract_norm": "layer", "conv_bias": True} if do_stable_layer_norm else {}
    teacher = tiny_teacher(num_hidden_layers=3, do_stable_layer_norm=do_stable_layer_norm, **norm)
    student = init_student_from_teacher(teacher, num_hidden_groups=3).eval()
    assert student.config.num_hidden_layers == 3
    inputs, mask = padded_batch((4000, 2500))
    with torch.no_grad():
        expected = teacher(inputs, attention_mask=mask, output_hidden_states=True)
        fast = student(inputs, attention_mask=mask, output_hidden_states=True)
        use_hubert_arithmetic(student)
        actual = student(inputs, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, rtol=0, atol=0)
    assert len(actual.hidden_states) == len(expected.hidden_states) == 4
    for ours, theirs, fast_state in zip(actual.hidden_states, expected.hidden_states, fast.hidden_states):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        torch.testing.assert_close(fast_state, theirs, rtol=0, atol=1e-5)


def test_distilhubert_shaped_teacher_and_head_models():
    # DistilHuBERT: 2 layers, no layer norm in the feature projection
    teacher_config = HubertConfig(
        **{
            key: value
            for key, value in tiny_config_kwargs(num_hidden_layers=2, feat_proj_layer_norm=False).items()
            if key != "num_hidden_groups"
        }
    )
    torch.manual_seed(1)
    teacher = HubertForCTC(teacher_config).eval()
    student = init_student_from_teacher(teacher, num_hidden_groups=2, num_hidden_layers=6)
    assert student.config.feat_proj_layer_norm is False
    assert student.config.num_hidden_layers == 6
    torch.testing.assert_close(
        student.encoder.layers[1].feed_forward.output_dense.weight,
        teacher.hubert.encoder.layers[1].feed_forward.output_dense.weight,
        rtol=0,
        atol=0,
    )
    # the first two applications are exactly the teacher
    use_hubert_arithmetic(student)
    inputs, mask = padded_batch((3000,))
    with torch.no_grad():
        expected = teacher.hubert(inputs, attention_mask=mask).last_hidden_state
        actual = student.eval()(inputs, attention_mask=mask, output_hidden_states=True).hidden_states[2]
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


def test_student_dropouts_follow_the_recipe_and_overrides():
    teacher = tiny_teacher(num_hidden_layers=2, layerdrop=0.1, activation_dropout=0.1)
    student = init_student_from_teacher(teacher, num_hidden_groups=1, num_hidden_layers=4, do_normalize=True)
    assert student.config.layerdrop == 0.0
    assert student.config.activation_dropout == 0.0
    assert student.config.do_normalize is True
    assert student.config.model_type == "alhubert"


def test_bad_inputs():
    teacher = tiny_teacher(num_hidden_layers=2)
    with pytest.raises(ValueError, match="at most that many distinct layers"):
        init_student_from_teacher(teacher, num_hidden_groups=3, num_hidden_layers=6)
    with pytest.raises(TypeError, match="HubertModel"):
        init_student_from_teacher(torch.nn.Linear(2, 2), num_hidden_groups=1)
    with pytest.raises(ValueError, match="num_hidden_groups"):
        init_student_from_teacher(teacher, num_hidden_groups=2, num_hidden_layers=1)
