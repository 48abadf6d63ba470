# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Layer-to-layer distillation of a frozen teacher (HuBERT, or any model returning `hidden_states`) into ALHuBERT.

`distillation_loss` is the DistilHuBERT / DistilALHuBERT loss; `DistillationTrainer` is a `transformers.Trainer` that
runs the teacher and the student on each batch and minimises it (spec section 4).
"""

import os
import shutil
import tempfile
from typing import NamedTuple

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, Trainer, TrainingArguments
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.utils import SAFE_WEIGHTS_NAME, logging

from ..models.fast_cpu_path import use_fast_cpu_path
from ..models.modeling_alhubert import AlHubertModel
from .arguments import LOSS_TYPES, PREDICTION_HEADS_DIR, DistillationArguments  # noqa: F401  (API)
from .teacher_cache import (
    UTTERANCE_KEYS, TeacherCache, TeacherCacheCallback, TeacherCacheCollator, check_no_cropping
)


logger = logging.get_logger(__name__)

class DistillationLoss(NamedTuple):
    """Total loss and its per-pair reconstruction (`rec`) and cosine (`sim`) terms, each of shape `(num_pairs,)`."""

    loss: torch.Tensor
    rec: torch.Tensor
    sim: torch.Tensor


def _masked_mean(values: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over every element (`frame_mask` None) or over the real frames; `values` is (B, T) or (B, T, D)."""
    if frame_mask is None:
        return values.mean()
    weights = frame_mask.to(values.dtype)
    if values.dim() == 3:
        return (values * weights.unsqueeze(-1)).sum() / (weights.sum() * values.shape[-1]).clamp(min=1)
    return (values * weights).sum() / weights.sum().clamp(min=1)


def distillation_loss(
    student_states: list[torch.Tensor],
    teacher_states: list[torch.Tensor],
    frame_mask: torch.Tensor | None = None,
    loss_type: str = "l2",
    cosine_weight: float = 1.0,
) -> DistillationLoss:
    """Sum over pairs of the mean L2/L1 error plus `cosine_weight` x the mean -log(sigmoid(cosine similarity)).

    Each pair of (B, T, D) tensors is first trimmed to the shorter length in time. With a `frame_mask` (B, T), 1 for
    real frames, the means run over real frames only; without one, over the whole padded batch (the original).
    """
    if len(student_states) != len(teacher_states):
        raise ValueError(f"Got {len(student_states)} student states for {len(teacher_states)} teacher states.")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}.")
    rec_terms, sim_terms = [], []
    for student, teacher in zip(student_states, teacher_states):
        length = min(student.shape[1], teacher.shape[1])
        student, teacher = student[:, :length], teacher[:, :length].to(student.dtype)
        mask = frame_mask[:, :length] if frame_mask is not None else None
        error = (student - teacher).pow(2) if loss_type == "l2" else (student - teacher).abs()
        rec_terms.append(_masked_mean(error, mask))
        similarity = F.cosine_similarity(student, teacher, dim=-1)
        sim_terms.append(_masked_mean(-F.logsigmoid(similarity), mask))
    rec, sim = torch.stack(rec_terms), torch.stack(sim_terms)
    loss = rec.sum() + cosine_weight * sim.sum() if cosine_weight else rec.sum()
    return DistillationLoss(loss=loss, rec=rec, sim=sim)


def _next_layer_norm(model: nn.Module, index: int) -> nn.Module:
    """The LayerNorm that the layer application after hidden state `index` starts with (the final one at the end)."""
    config = model.config
    if index >= config.num_hidden_layers:
        return model.encoder.layer_norm
    distinct = config.distinct_layer_index(index) if hasattr(config, "distinct_layer_index") else index
    return model.encoder.layers[distinct].layer_norm


def select_hidden_states(model: nn.Module, hidden_states, layers: list[int], pre_ln: bool) -> list[torch.Tensor]:
    """`hidden_states[i]` for each `i` in `layers`, after the next layer's attention LayerNorm when `pre_ln`."""
    selected = [hidden_states[index] for index in layers]
    if pre_ln:
        selected = [_next_layer_norm(model, index)(state) for index, state in zip(layers, selected)]
    return selected


class DistillationStudentOutput(NamedTuple):
    """What `DistillationStudent` returns for a batch."""

    states: list[torch.Tensor]  # one (B, T, D_teacher) tensor per target, after the prediction heads if any
    frame_mask: torch.Tensor | None  # (B, T), True for real frames; None without an attention mask
    feature_penalty: torch.Tensor  # mean squared conv feature encoder output (0 when not asked for)


class DistillationStudent(nn.Module):
    """The module the `DistillationTrainer` optimises: the student plus everything distillation adds around it.

    Its forward runs the student on a batch and returns the hidden states selected as targets (`student_layers`, after
    the next layer's attention LayerNorm for `pre_ln_targets`, through one linear prediction head each when
    `prediction_heads`), the frame mask, and the conv feature penalty. The gradient into the conv feature encoder is
    scaled by `feature_grad_mult` (fairseq's GradMultiply), as in torchaudio's `HuBERTPretrainModel.forward`; the
    student runs only up to the deepest selected layer (elastic depth), and its SpecAugment masking is skipped unless
    `spec_augment`. Heads are DistilHuBERT's: several may read the same student layer (e.g. `student_layers=[2, 2, 2]`
    for heads from the last layer of a 2-layer student to three teacher layers).
    """

    accepts_loss_kwargs = False  # the Trainer must not pass num_items_in_batch: the loss is a mean per batch

    def __init__(
        self,
        student: AlHubertModel,
        student_layers: list[int],
        teacher_hidden_size: int | None = None,
        feature_grad_mult: float = 0.1,
        feature_penalty: bool = False,
        pre_ln_targets: bool = False,
        spec_augment: bool = False,
    ):
        super().__init__()
        self.student = student
        self.student_layers = list(student_layers)
        self.heads = None
        if teacher_hidden_size is not None:
            self.heads = nn.ModuleList(
                nn.Linear(student.config.hidden_size, teacher_hidden_size) for _ in self.student_layers
            )
        self.feature_grad_mult = feature_grad_mult
        self.feature_penalty = feature_penalty
        self.pre_ln_targets = pre_ln_targets
        self.spec_augment = spec_augment
        if not spec_augment and hasattr(student, "masked_spec_embed"):
            student.masked_spec_embed.requires_grad_(False)  # never used without SpecAugment
            if student.config.apply_spec_augment and student.config.mask_feature_prob > 0:
                raise ValueError(
                    f"The student's config has mask_feature_prob={student.config.mask_feature_prob}: channel masking "
                    "cannot be skipped per call. Set mask_feature_prob=0 in the student config, or distil with "
                    "SpecAugment (--student_spec_augment true)."
                )
        if feature_grad_mult == 0:
            student.freeze_feature_encoder()
        deepest = max(1, max(self.student_layers))
        self._depth = {"depth": deepest} if deepest < student.config.num_hidden_layers else {}

    def _scale_and_measure(self, penalties: list):
        """A forward hook on the conv feature encoder: scale its gradient, keep its mean square."""

        def hook(module, inputs, features):
            if self.feature_penalty:
                penalties.append(features.float().pow(2).mean())
            if features.requires_grad and self.feature_grad_mult not in (0.0, 1.0):
                return _ScaleGradient.apply(features, self.feature_grad_mult)
            return features

        return hook

    def forward(self, input_values, attention_mask=None) -> DistillationStudentOutput:
        student = self.student
        kwargs = dict(self._depth)
        if not self.spec_augment and self.training and hasattr(student, "masked_spec_embed"):
            frames = student._get_feat_extract_output_lengths(input_values.shape[1])
            kwargs["mask_time_indices"] = torch.zeros(
                input_values.shape[0], int(frames), dtype=torch.bool, device=input_values.device
            )
        penalties = []
        handle = student.feature_extractor.register_forward_hook(self._scale_and_measure(penalties))
        try:
            outputs = student(
                input_values, attention_mask=attention_mask, output_hidden_states=self.student_layers, **kwargs
            )
        finally:
            handle.remove()
        states = select_hidden_states(student, outputs.hidden_states, self.student_layers, self.pre_ln_targets)
        if self.heads is not None:
            states = [head(state) for head, state in zip(self.heads, states)]
        frame_mask = None
        if attention_mask is not None:
            frame_mask = student._get_feature_vector_attention_mask(states[0].shape[1], attention_mask)
        penalty = penalties[0] if penalties else input_values.new_zeros(())
        return DistillationStudentOutput(states=states, frame_mask=frame_mask, feature_penalty=penalty)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward, gradient multiplied by `scale` backward (fairseq's GradMultiply)."""

    @staticmethod
    def forward(ctx, tensor, scale):
        ctx.scale = scale
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def check_feature_extractors(teacher_feature_extractor, student_feature_extractor):
    """Raise a `ValueError` when teacher and student expect differently sampled or normalised input audio."""
    if teacher_feature_extractor is None or student_feature_extractor is None:
        return
    for name in ("sampling_rate", "do_normalize"):
        teacher_value = getattr(teacher_feature_extractor, name, None)
        student_value = getattr(student_feature_extractor, name, None)
        if teacher_value != student_value:
            raise ValueError(
                f"The teacher's feature extractor has {name}={teacher_value} but the student's has {name}="
                f"{student_value}; both models see the same input_values, so they must agree. Build the student's "
                f"feature extractor with {name}={teacher_value} (for do_normalize, set the student config's "
                "do_normalize)."
            )


class DistillationTrainer(Trainer):
    """A `Trainer` that distils a frozen `teacher` into the student `model` (an `AlHubertModel`) with
    `distillation_loss`.

    The student is wrapped in a `DistillationStudent` (prediction heads, conv gradient scaling, layer selection), which
    is what the Trainer optimises, wraps for DDP and checkpoints. The teacher runs in eval and inference mode, in
    `teacher_dtype` (e.g. `torch.bfloat16` on a GPU), on the training device and outside DDP, with the float32 CPU fast
    path of its convolutions (`teacher_fast_path`). Per-pair `rec_<s>_<t>` and `sim_<s>_<t>` terms are added to the
    logs. Every save (checkpoints and the final model) writes the student as a complete model directory, and the
    prediction heads, if any, in its `prediction_heads/` folder. The student's processing class (its feature
    extractor) is compared with `teacher_feature_extractor`.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean: the Trainer divides it for accumulation

    def __init__(
        self,
        model: AlHubertModel | None = None,
        args: TrainingArguments | None = None,
        *,
        teacher: PreTrainedModel,
        distillation_args: DistillationArguments | None = None,
        teacher_dtype: torch.dtype | None = None,
        teacher_feature_extractor=None,
        **kwargs,
    ):
        self.distillation_args = distillation_args = distillation_args or DistillationArguments()
        self._check_models(model, teacher, distillation_args)
        check_feature_extractors(teacher_feature_extractor, kwargs.get("processing_class"))
        pre_ln_targets = distillation_args.pre_ln_targets
        if pre_ln_targets is None:
            pre_ln_targets = bool(getattr(teacher.config, "do_stable_layer_norm", False))
        if pre_ln_targets and not getattr(model.config, "do_stable_layer_norm", False):
            raise ValueError(
                "pre_ln_targets compares states after the next layer's attention LayerNorm, which needs a pre-LN "
                "student (do_stable_layer_norm=True) like the pre-LN teacher; initialise the student from the teacher "
                "or pass --pre_ln_targets false."
            )
        self.pre_ln_targets = pre_ln_targets
        self.student = model
        wrapped = DistillationStudent(
            model,
            distillation_args.student_layers,
            teacher_hidden_size=teacher.config.hidden_size if distillation_args.prediction_heads else None,
            feature_grad_mult=distillation_args.feature_grad_mult,
            feature_penalty=distillation_args.feature_penalty_weight > 0,
            pre_ln_targets=pre_ln_targets,
            spec_augment=distillation_args.student_spec_augment,
        )
        args = args if args is not None else TrainingArguments(output_dir="trainer_output")
        if args.remove_unused_columns:
            logger.info("Setting remove_unused_columns=False: the collator needs the raw audio column.")
            args.remove_unused_columns = False
        self._logged_terms = {"train": [], "eval": []}
        super().__init__(model=wrapped, args=args, **kwargs)

        self.teacher = teacher.requires_grad_(False).eval()
        self.teacher.to(device=self.args.device, dtype=teacher_dtype or torch.float32)
        if distillation_args.teacher_fast_path:
            use_fast_cpu_path(self.teacher)
        self.teacher_cache = None
        if distillation_args.teacher_cache_dir:
            self._set_up_teacher_cache(distillation_args.teacher_cache_dir, teacher_feature_extractor)

    def _set_up_teacher_cache(self, directory: str, teacher_feature_extractor) -> None:
        """Wrap the collator so that batches carry utterance ids, refuse cropped data, open (or reset) the cache."""
        if self.data_collator is None or not callable(self.data_collator):
            raise ValueError("--teacher_cache_dir needs the audio collator (alhubert.training.data.AudioCollator).")
        if not isinstance(self.data_collator, TeacherCacheCollator):
            self.data_collator = TeacherCacheCollator(self.data_collator)
        check_no_cropping(self.train_dataset, self.data_collator.max_length_samples)
        with self.args.main_process_first(desc="opening the teacher cache"):
            self.teacher_cache = TeacherCache.for_teacher(
                directory, self.teacher, self.distillation_args.teacher_layers, self.pre_ln_targets,
                teacher_feature_extractor or self.processing_class, rank=self.args.process_index,
            )
        self.add_callback(TeacherCacheCallback(self.teacher_cache))

    @staticmethod
    def _check_models(student, teacher, distillation_args: DistillationArguments):
        if not isinstance(student, AlHubertModel):
            raise TypeError(f"The student must be an AlHubertModel, got {type(student).__name__}.")
        for role, model, layers in (
            ("student", student, distillation_args.student_layers),
            ("teacher", teacher, distillation_args.teacher_layers),
        ):
            count = model.config.num_hidden_layers
            bad = [index for index in layers if not 0 <= index <= count]
            if bad:
                raise ValueError(
                    f"{role}_layers {bad} out of range: the {role} has {count} layers, so its hidden_states indices "
                    f"run from 0 (encoder input) to {count} (last layer). Fix --{role}_layers."
                )
        if student.config.hidden_size != teacher.config.hidden_size and not distillation_args.prediction_heads:
            raise ValueError(
                f"The student's hidden size ({student.config.hidden_size}) differs from the teacher's "
                f"({teacher.config.hidden_size}); pass --prediction_heads to learn linear heads from the student's "
                "size to the teacher's (DistilHuBERT-style), or give the student the teacher's hidden size."
            )

    def _teacher_states(self, input_values, attention_mask) -> list[torch.Tensor]:
        """The float32 target states, computed in inference mode (only the selected hidden states are kept)."""
        layers = self.distillation_args.teacher_layers
        dtype = next(self.teacher.parameters()).dtype
        with torch.inference_mode():
            outputs = self.teacher(
                input_values.to(dtype), attention_mask=attention_mask, output_hidden_states=list(layers)
            )
            states = select_hidden_states(self.teacher, outputs.hidden_states, layers, self.pre_ln_targets)
        # copies made outside inference mode: autograd may save them for the loss's backward pass
        return [state.to(torch.float32, copy=True) for state in states]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Distillation loss of one batch of `input_values` (+ `attention_mask`)."""
        args = self.distillation_args
        input_values, attention_mask = inputs["input_values"], inputs.get("attention_mask")
        keys = inputs.get(UTTERANCE_KEYS) if self.teacher_cache is not None and model.training else None
        teacher_states = None
        if keys:
            num_frames = int(self.teacher._get_feat_extract_output_lengths(input_values.shape[1]))
            teacher_states = self.teacher_cache.lookup(keys, num_frames, device=input_values.device)
        if teacher_states is None:
            teacher_states = self._teacher_states(input_values, attention_mask)
            if keys:
                samples = attention_mask.sum(-1) if attention_mask is not None else torch.full(
                    (input_values.shape[0],), input_values.shape[1]
                )
                self.teacher_cache.store(keys, teacher_states, self.teacher._get_feat_extract_output_lengths(samples))
        student = model(input_values, attention_mask=attention_mask)
        frame_mask = student.frame_mask if args.mask_padding else None
        result = distillation_loss(
            student.states, teacher_states, frame_mask, loss_type=args.loss_type, cosine_weight=args.cosine_weight
        )
        loss = result.loss
        terms = [result.rec.detach(), result.sim.detach()]
        if args.feature_penalty_weight > 0:
            loss = loss + args.feature_penalty_weight * student.feature_penalty
            terms.append(student.feature_penalty.detach().reshape(1))
        self._logged_terms["train" if model.training else "eval"].append(torch.cat(terms))
        return (loss, result) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation: the distillation loss only (there are no labels or logits to return)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean per-pair `rec_*` and `sim_*` terms since the last log (averaged over processes)."""
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train" if "loss" in logs else None
        if mode is not None and self._logged_terms[mode]:
            terms = torch.stack(self._logged_terms[mode]).mean(dim=0)
            if self.accelerator.num_processes > 1:
                terms = self.accelerator.reduce(terms, reduction="mean")
            self._logged_terms[mode] = []
            prefix = "eval_" if mode == "eval" else ""
            names = self.distillation_args.pair_names
            values = terms.tolist()
            for index, name in enumerate(names):
                logs[f"{prefix}rec_{name}"] = values[index]
                logs[f"{prefix}sim_{name}"] = values[len(names) + index]
            if self.distillation_args.feature_penalty_weight > 0:
                logs[f"{prefix}feature_penalty"] = values[-1]
        super().log(logs, start_time)

    def create_model_card(self, *args, **kwargs):
        """Keep the ALHuBERT card written with `alhubert.hub.model_cards` instead of the Trainer's generic one."""
        if not os.path.isfile(os.path.join(self.args.output_dir, "README.md")):
            super().create_model_card(*args, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Write the student as a complete model directory (+ `prediction_heads/`), for checkpoints and the end.

        `state_dict` is the wrapped module's, as `save_model` gathers it under FSDP or DeepSpeed. Files are written to
        a staging folder first and moved into `output_dir` one by one, so an interrupted save never leaves a
        half-written weights file behind.
        """
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        wrapped = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if state_dict is None:
            state_dict = wrapped.state_dict()
        student_state = _sub_state_dict(state_dict, "student.")
        heads_state = _sub_state_dict(state_dict, "heads.")
        os.makedirs(output_dir, exist_ok=True)
        logger.info(f"Saving the student to {output_dir}")
        staging = tempfile.mkdtemp(dir=output_dir, prefix=".saving-")
        try:
            wrapped.student.save_pretrained(staging, state_dict=student_state)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(staging)
            if heads_state:
                os.makedirs(os.path.join(staging, PREDICTION_HEADS_DIR))
                save_file(
                    {key: value.detach().cpu().contiguous() for key, value in heads_state.items()},
                    os.path.join(staging, PREDICTION_HEADS_DIR, SAFE_WEIGHTS_NAME),
                    metadata={"student_layers": ",".join(map(str, self.distillation_args.student_layers)),
                              "teacher_layers": ",".join(map(str, self.distillation_args.teacher_layers))},
                )
            torch.save(self.args, os.path.join(staging, TRAINING_ARGS_NAME))
            for name in os.listdir(staging):
                target = os.path.join(output_dir, name)
                if os.path.isdir(target):
                    shutil.rmtree(target)
                os.replace(os.path.join(staging, name), target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Load a checkpoint written by `_save`: the student's weights and the prediction heads."""
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = self.accelerator.unwrap_model(model if model is not None else self.model)
        weights = os.path.join(resume_from_checkpoint, SAFE_WEIGHTS_NAME)
        if not os.path.isfile(weights):
            raise ValueError(f"{resume_from_checkpoint} has no {SAFE_WEIGHTS_NAME}; it is not a complete checkpoint.")
        state_dict = {f"student.{key}": value for key, value in load_file(weights).items()}
        heads = os.path.join(resume_from_checkpoint, PREDICTION_HEADS_DIR, SAFE_WEIGHTS_NAME)
        if model.heads is not None:
            state_dict.update({f"heads.{key}": value for key, value in load_file(heads).items()})
        logger.info(f"Loading the student from {resume_from_checkpoint}.")
        model.load_state_dict(state_dict, strict=True)


def _sub_state_dict(state_dict: dict, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


__all__ = [
    "DistillationArguments",
    "DistillationLoss",
    "DistillationTrainer",
    "DistillationStudent",
    "DistillationStudentOutput",
    "check_feature_extractors",
    "distillation_loss",
    "select_hidden_states",
]
