# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Layer-to-layer distillation of a frozen teacher (HuBERT, or any model returning `hidden_states`) into ALHuBERT.

`distillation_loss` is the DistilHuBERT / DistilALHuBERT loss; `DistillationTrainer` is a `transformers.Trainer` that
runs the teacher and the student on each batch and minimises it, as the DistilALHuBERT paper trains its students.
"""

import os
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import FeatureExtractionMixin, PreTrainedModel, Trainer
from transformers.trainer_utils import TrainOutput, get_last_checkpoint
from transformers.utils import SAFE_WEIGHTS_NAME

from ..models.fast_cpu_path import use_fast_cpu_path
from ..models.modeling_alhubert import AlHubertModel, AlHubertPreTrainedModel
from ..utils.files import atomic_write
from .arguments import LOSS_TYPES, PREDICTION_HEADS_DIR, DistillationConfig
from .card_trainer import ProjectCardTrainerMixin
from .teacher_cache import UTTERANCE_KEYS, TeacherCache, TeacherCacheCallback, TeacherCacheCollator, check_no_cropping


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


def select_hidden_states(
    model: nn.Module, hidden_states: tuple[torch.Tensor, ...], layers: list[int], pre_ln: bool
) -> list[torch.Tensor]:
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


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient multiplied by `scale` backward (fairseq's and torchaudio's GradMultiply)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def scaled_feature_encoder(model: nn.Module, scale: float) -> dict[str, torch.Tensor]:
    """The trainable parameters of `model.feature_extractor` (the conv stack) behind a `GradMultiply` by `scale`,
    keyed for `torch.func.functional_call(model, ...)`; empty when gradients are off or `scale` is 0 or 1."""
    if not torch.is_grad_enabled() or scale in (0.0, 1.0):
        return {}
    return {
        f"feature_extractor.{name}": GradMultiply.apply(parameter, scale)
        for name, parameter in model.feature_extractor.named_parameters()
        if parameter.requires_grad
    }


def pop_logged_terms(trainer: Trainer, logs: dict[str, float]) -> tuple[str, list[float]] | None:
    """For a Trainer that keeps loss terms per batch in `trainer._logged_terms` ({"train": [...], "eval": [...]}):
    the mean since the last log of the mode of `logs`, averaged over processes, with the prefix of their names
    (`eval_` or nothing); None if there are none."""
    mode = "eval" if any(key.startswith("eval_") for key in logs) else "train" if "loss" in logs else None
    if mode is None or not trainer._logged_terms[mode]:
        return None
    terms = torch.stack(trainer._logged_terms[mode]).mean(dim=0)
    if trainer.accelerator.num_processes > 1:
        terms = trainer.accelerator.reduce(terms, reduction="mean")
    trainer._logged_terms[mode] = []
    return ("eval_" if mode == "eval" else ""), terms.tolist()


class DistillationStudent(AlHubertPreTrainedModel):
    """The model the `DistillationTrainer` optimises: the student plus everything distillation adds around it.

    It owns the student's modules (its state dict has the student's keys, plus `prediction_heads.*`), so `Trainer`
    saves, gathers and reloads it as any model. The gradient into the conv feature encoder is scaled by a
    `GradMultiply` on the encoder's parameters (the same gradients as one on its output, to float rounding); the
    student runs only up to the deepest selected layer, and its SpecAugment masking is skipped unless `spec_augment`.
    """

    accepts_loss_kwargs = False  # the Trainer must not pass num_items_in_batch: the loss is a mean per batch

    def __init__(
        self,
        student: AlHubertModel,
        student_layers: list[int],
        teacher_layers: list[int] | None = None,
        teacher_hidden_size: int | None = None,
        feature_grad_mult: float = 0.1,
        feature_penalty: bool = False,
        pre_ln_targets: bool = False,
        spec_augment: bool = False,
    ):
        super().__init__(student.config)
        for name, module in student.named_children():
            self.add_module(name, module)
        for name, parameter in student.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        self.__dict__["student"] = student  # the same modules, as the model folder to save (not a second copy)
        self.student_layers = list(student_layers)
        self.teacher_layers = list(teacher_layers if teacher_layers is not None else student_layers)
        self.prediction_heads = None
        if teacher_hidden_size is not None:
            self.prediction_heads = nn.ModuleList(
                nn.Linear(student.config.hidden_size, teacher_hidden_size) for _ in self.student_layers
            )
            # kept apart, in prediction_heads/: a checkpoint's model.safetensors holds the student only
            self.register_load_state_dict_post_hook(_heads_are_loaded_apart)
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

    def train(self, mode: bool = True) -> "DistillationStudent":
        super().train(mode)
        self.student.training = mode  # its modules are this model's; the student object itself is not a child
        return self

    def forward(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> DistillationStudentOutput:
        student = self.student
        kwargs = dict(self._depth)
        if not self.spec_augment and self.training and hasattr(student, "masked_spec_embed"):
            frames = student._get_feat_extract_output_lengths(input_values.shape[1])
            kwargs["mask_time_indices"] = torch.zeros(
                input_values.shape[0], int(frames), dtype=torch.bool, device=input_values.device
            )
        scaled = scaled_feature_encoder(student, self.feature_grad_mult)
        outputs = torch.func.functional_call(
            student,
            scaled,
            (input_values,),
            dict(attention_mask=attention_mask, output_hidden_states=self.student_layers, **kwargs),
            strict=False,
        )
        states = select_hidden_states(student, outputs.hidden_states, self.student_layers, self.pre_ln_targets)
        if self.prediction_heads is not None:
            states = [head(state) for head, state in zip(self.prediction_heads, states)]
        frame_mask = None
        if attention_mask is not None:
            frame_mask = student._get_feature_vector_attention_mask(states[0].shape[1], attention_mask)
        penalty = input_values.new_zeros(())
        if self.feature_penalty:  # fairseq's features_pen: its gradient is not scaled
            penalty = student.feature_extractor(input_values.to(student.dtype)).float().pow(2).mean()
        return DistillationStudentOutput(states=states, frame_mask=frame_mask, feature_penalty=penalty)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        state_dict: dict | None = None,
        is_main_process: bool = True,
        **kwargs: Any,
    ) -> None:
        """The student as a complete model folder, the prediction heads (if any) in its `prediction_heads/`.

        `state_dict` is this model's (as `Trainer` gathers it under FSDP or DeepSpeed).
        """
        state_dict = self.state_dict() if state_dict is None else state_dict
        prefix = "prediction_heads."
        heads = {key.removeprefix(prefix): value for key, value in state_dict.items() if key.startswith(prefix)}
        student_state = {key: value for key, value in state_dict.items() if not key.startswith(prefix)}
        self.student.save_pretrained(
            save_directory, state_dict=student_state, is_main_process=is_main_process, **kwargs
        )
        if heads and is_main_process:
            metadata = {
                "student_layers": ",".join(map(str, self.student_layers)),
                "teacher_layers": ",".join(map(str, self.teacher_layers)),
            }
            tensors = {key: value.detach().cpu().contiguous() for key, value in heads.items()}
            path = os.path.join(save_directory, PREDICTION_HEADS_DIR, SAFE_WEIGHTS_NAME)
            atomic_write(path, lambda name: save_file(tensors, name, metadata=metadata))  # creates the folder

    def load_prediction_heads(self, folder: str | os.PathLike) -> None:
        """Load the heads that `save_pretrained` wrote into `folder`'s `prediction_heads/` (strictly)."""
        if self.prediction_heads is None:
            return
        path = os.path.join(folder, PREDICTION_HEADS_DIR, SAFE_WEIGHTS_NAME)
        if not os.path.isfile(path):
            raise ValueError(
                f"{folder} has no {PREDICTION_HEADS_DIR}/{SAFE_WEIGHTS_NAME}: it was not saved with "
                "--prediction_heads; resume with the same settings as the run that wrote it."
            )
        self.prediction_heads.load_state_dict(load_file(path), strict=True)


def _heads_are_loaded_apart(module: nn.Module, incompatible_keys) -> None:
    """`Trainer` loads a checkpoint's model.safetensors (the student); the heads come from `load_prediction_heads`."""
    missing = incompatible_keys.missing_keys
    missing[:] = [key for key in missing if not key.startswith("prediction_heads.")]


def check_feature_extractors(
    teacher_feature_extractor: FeatureExtractionMixin | None, student_feature_extractor: FeatureExtractionMixin | None
) -> None:
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


class DistillationTrainer(ProjectCardTrainerMixin, Trainer):
    """A `Trainer` that distils a frozen `teacher` into the student `model` (an `AlHubertModel`) with
    `distillation_loss`, with the settings of `args` (a `DistillationConfig`), in the manner of TRL's `GKDTrainer`.

    The Trainer optimises, saves and reloads a `DistillationStudent` built on the student. The teacher is prepared by
    Accelerate in evaluation mode (on the device, outside DDP) and runs in inference mode, in `teacher_dtype` (e.g.
    `torch.bfloat16` on a GPU). Per-pair `rec_<s>_<t>` and `sim_<s>_<t>` terms are added to the logs.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean: the Trainer divides it for accumulation

    def __init__(
        self,
        model: AlHubertModel | None = None,
        args: DistillationConfig | None = None,
        *,
        teacher: PreTrainedModel,
        teacher_dtype: torch.dtype | None = None,
        teacher_feature_extractor: FeatureExtractionMixin | None = None,
        **kwargs: Any,
    ):
        args = args if args is not None else DistillationConfig(output_dir="trainer_output")
        if not isinstance(args, DistillationConfig):
            raise TypeError(
                f"args must be a DistillationConfig (TrainingArguments plus the distillation settings), "
                f"got {type(args).__name__}."
            )
        self._check_models(model, teacher, args)
        check_feature_extractors(teacher_feature_extractor, kwargs.get("processing_class"))
        pre_ln_targets = args.pre_ln_targets
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
        distillation_model = DistillationStudent(
            model,
            args.student_layers,
            args.teacher_layers,
            teacher_hidden_size=teacher.config.hidden_size if args.prediction_heads else None,
            feature_grad_mult=args.feature_grad_mult,
            feature_penalty=args.feature_penalty_weight > 0,
            pre_ln_targets=pre_ln_targets,
            spec_augment=args.student_spec_augment,
        )
        self._logged_terms = {"train": [], "eval": []}
        super().__init__(model=distillation_model, args=args, **kwargs)

        teacher = teacher.requires_grad_(False).to(dtype=teacher_dtype or torch.float32)
        self.teacher = self.accelerator.prepare_model(teacher, evaluation_mode=True).eval()
        if args.teacher_fast_path:
            use_fast_cpu_path(self.teacher)
        self.teacher_cache = None
        if args.teacher_cache_dir:
            self._set_up_teacher_cache(args.teacher_cache_dir, teacher_feature_extractor)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> TrainOutput:
        """`Trainer.train`; on resume, the prediction heads are also read from the checkpoint's `prediction_heads/`."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(resume_from_checkpoint, (str, os.PathLike)) and not (
            self.is_fsdp_enabled or self.is_deepspeed_enabled  # their checkpoints hold the whole model, heads included
        ):
            self.model.load_prediction_heads(resume_from_checkpoint)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _set_up_teacher_cache(self, directory: str, teacher_feature_extractor) -> None:
        """Wrap the collator so that batches carry utterance ids, refuse cropped data, open (or reset) the cache."""
        if self.data_collator is None or not callable(self.data_collator):
            raise ValueError("--teacher_cache_dir needs the audio collator (alhubert.training.data.AudioCollator).")
        if not isinstance(self.data_collator, TeacherCacheCollator):
            self.data_collator = TeacherCacheCollator(self.data_collator)
        check_no_cropping(self.train_dataset, self.data_collator.max_length_samples)
        with self.args.main_process_first(desc="opening the teacher cache"):
            self.teacher_cache = TeacherCache.for_teacher(
                directory,
                self.teacher,
                self.args.teacher_layers,
                self.pre_ln_targets,
                teacher_feature_extractor or self.processing_class,
                rank=self.args.process_index,
            )
        self.add_callback(TeacherCacheCallback(self.teacher_cache))

    @staticmethod
    def _check_models(student, teacher, distillation_args: DistillationConfig):
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
        layers = self.args.teacher_layers
        dtype = next(self.teacher.parameters()).dtype
        with torch.inference_mode():
            outputs = self.teacher(
                input_values.to(dtype), attention_mask=attention_mask, output_hidden_states=list(layers)
            )
            states = select_hidden_states(self.teacher, outputs.hidden_states, layers, self.pre_ln_targets)
        # copies made outside inference mode: autograd may save them for the loss's backward pass
        return [state.to(torch.float32, copy=True) for state in states]

    def compute_loss(
        self,
        model: DistillationStudent,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, DistillationLoss]:
        """Distillation loss of one batch of `input_values` (+ `attention_mask`)."""
        args = self.args
        input_values, attention_mask = inputs["input_values"], inputs.get("attention_mask")
        keys = inputs.get(UTTERANCE_KEYS) if self.teacher_cache is not None and model.training else None
        teacher_states = None
        if keys:
            num_frames = int(self.teacher._get_feat_extract_output_lengths(input_values.shape[1]))
            teacher_states = self.teacher_cache.lookup(keys, num_frames, device=input_values.device)
        if teacher_states is None:
            teacher_states = self._teacher_states(input_values, attention_mask)
            if keys:
                frame_lengths = [num_frames] * len(keys)
                if attention_mask is not None:
                    frame_lengths = self.teacher._get_feat_extract_output_lengths(attention_mask.sum(-1))
                self.teacher_cache.store(keys, teacher_states, frame_lengths)
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

    def prediction_step(
        self,
        model: DistillationStudent,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor, None, None]:
        """Evaluation: the distillation loss only (there are no labels or logits to return)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean per-pair `rec_*` and `sim_*` terms since the last log (averaged over processes)."""
        kept = pop_logged_terms(self, logs)
        if kept is not None:
            prefix, values = kept
            names = self.args.pair_names
            for index, name in enumerate(names):
                logs[f"{prefix}rec_{name}"] = values[index]
                logs[f"{prefix}sim_{name}"] = values[len(names) + index]
            if self.args.feature_penalty_weight > 0:
                logs[f"{prefix}feature_penalty"] = values[-1]
        super().log(logs, start_time)


__all__ = ["DistillationTrainer", "GradMultiply", "distillation_loss", "pop_logged_terms", "scaled_feature_encoder"]
