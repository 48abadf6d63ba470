# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""HuBERT pre-training (masked prediction of cluster labels, Hsu et al. 2021) around a plain Transformers
`HubertModel`.

Transformers ships HuBERT's encoder but not its pre-training. `HubertForPreTraining` adds what the HuBERT paper adds:
frames are masked in spans (Transformers' `_compute_mask_indices`, filled with the model's own `masked_spec_embed`
through `HubertModel.forward(mask_time_indices=...)`); the final hidden states are projected to `final_dim`; each
codebook (one k-means clustering) has a table of label embeddings; the logits of a frame are the cosine similarities
between its projection and every label embedding, divided by a temperature (0.1); the loss is the cross-entropy of
the masked frames (plus, optionally, a weighted cross-entropy of the unmasked ones). Padded frames never count. The
gradient of the conv feature encoder can be scaled down (`feature_grad_mult`, HuBERT: 0.1), as the distillation does.

The encoder stays a plain `HubertModel` (`model.hubert`), so that what is saved is a Transformers model folder; the
head is saved apart (`save_head`, the `pretraining_head/` folder of `alhubert pretrain-hubert`).
"""

import json
import os
import types
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import HubertConfig, HubertModel, PretrainedConfig, Trainer
from transformers.modeling_outputs import ModelOutput
from transformers.models.hubert.modeling_hubert import HubertPreTrainedModel, _compute_mask_indices

from .distillation import pop_logged_terms, scaled_feature_encoder


HEAD_DIR = "pretraining_head"
HEAD_CONFIG = "head_config.json"
HEAD_WEIGHTS = "model.safetensors"

# Encoder shapes for `alhubert pretrain-hubert --model_preset`; every other field keeps HubertConfig's default.
# No layerdrop: a skipped layer leaves parameters without gradients, which DistributedDataParallel refuses.
_PRE_LN = {"do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True, "layerdrop": 0.0}
HUBERT_PRESETS = {
    # the replication's teacher: 12 pre-LN layers of width 128 over 7 conv layers of 32 channels (2.5 M parameters)
    "tiny": dict(
        hidden_size=128,
        num_hidden_layers=12,
        num_attention_heads=4,
        intermediate_size=512,
        conv_dim=(32,) * 7,
        **_PRE_LN,
    ),
    # the README's example on the demo corpus: seconds per step on a CPU
    "demo": dict(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, conv_dim=(8,) * 7, **_PRE_LN
    ),
    # HuBERT Base (95 M parameters): HubertConfig's defaults
    "base": {"layerdrop": 0.0},
}


def hubert_config(preset: str, **overrides: object) -> HubertConfig:
    """The `HubertConfig` of a preset (`tiny`, `demo`, `base`), with `overrides`."""
    if preset not in HUBERT_PRESETS:
        raise ValueError(f"Unknown HuBERT preset {preset!r}; choose one of {', '.join(HUBERT_PRESETS)}.")
    return HubertConfig(**{**HUBERT_PRESETS[preset], **overrides})


def frame_counts(config: PretrainedConfig, num_samples: "int | list[int] | torch.Tensor") -> torch.Tensor:
    """Frames (at 50 Hz for HuBERT's stack) that the model of `config` makes of `num_samples` samples: Transformers'
    `_get_feat_extract_output_lengths`, which reads only `config.conv_kernel` and `config.conv_stride`."""
    lengths = torch.as_tensor(num_samples)
    owner = types.SimpleNamespace(config=config)
    return HubertPreTrainedModel._get_feat_extract_output_lengths(owner, lengths)


@dataclass
class PretrainingHeadConfig:
    """The pre-training head and loss: codebook sizes, projection, temperature, masking and loss weights."""

    num_classes: list[int] = field(default_factory=lambda: [100])
    final_dim: int = 256
    logit_temperature: float = 0.1
    mask_prob: float = 0.8
    mask_length: int = 10
    masked_weight: float = 1.0
    unmasked_weight: float = 0.0
    feature_grad_mult: float = 1.0

    def __post_init__(self) -> None:
        if not self.num_classes or min(self.num_classes) < 2:
            raise ValueError(f"Every codebook needs at least 2 classes, got {self.num_classes}.")
        if not 0 < self.mask_prob <= 1 or self.mask_length < 1:
            raise ValueError(
                f"mask_prob must lie in (0, 1] and mask_length be >= 1 (got {self.mask_prob}, {self.mask_length})."
            )
        if self.logit_temperature <= 0 or self.masked_weight < 0 or self.unmasked_weight < 0:
            raise ValueError("logit_temperature must be > 0 and the loss weights >= 0.")
        if not 0 < self.feature_grad_mult <= 1:
            raise ValueError(f"feature_grad_mult must lie in (0, 1] (HuBERT: 0.1), got {self.feature_grad_mult}.")


@dataclass
class HubertPreTrainingOutput(ModelOutput):
    """Loss (weighted masked + unmasked cross-entropy), its parts, and the accuracy on masked frames."""

    loss: torch.FloatTensor | None = None
    masked_loss: torch.FloatTensor | None = None
    unmasked_loss: torch.FloatTensor | None = None
    masked_accuracy: torch.FloatTensor | None = None


class HubertForPreTraining(HubertPreTrainedModel):
    """A `HubertModel` (`self.hubert`) with HuBERT's masked-prediction head: projection, label embeddings, loss."""

    def __init__(self, config: HubertConfig, head_config: PretrainingHeadConfig | None = None):
        super().__init__(config)
        self.head_config = head_config or PretrainingHeadConfig()
        self.hubert = HubertModel(config)
        if not hasattr(self.hubert, "masked_spec_embed"):
            raise ValueError(
                "The encoder has no masked_spec_embed (its config has mask_time_prob = mask_feature_prob "
                "= 0); set mask_time_prob > 0 in its config.json (e.g. 0.05) to pre-train it."
            )
        head = self.head_config
        self.final_proj = nn.Linear(config.hidden_size, head.final_dim * len(head.num_classes))
        self.label_embeddings = nn.ModuleList(nn.Embedding(count, head.final_dim) for count in head.num_classes)
        self.post_init()

    def compute_mask(self, frame_mask: torch.Tensor) -> torch.Tensor:
        """HuBERT's span mask (`mask_prob`, spans of `mask_length` frames) over the real frames of each row."""
        batch, frames = frame_mask.shape
        mask = _compute_mask_indices(
            (batch, frames),
            mask_prob=self.head_config.mask_prob,
            mask_length=min(self.head_config.mask_length, frames),
            attention_mask=frame_mask.long(),
            min_masks=self.config.mask_time_min_masks,
        )
        return torch.as_tensor(mask, device=frame_mask.device) & frame_mask

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
    ) -> HubertPreTrainingOutput:
        """`labels`: (batch, frames) or (batch, frames, codebooks) cluster ids, -100 on padding frames."""
        frames = int(frame_counts(self.config, input_values.shape[-1]))
        if attention_mask is None:
            frame_mask = torch.ones(input_values.shape[0], frames, dtype=torch.bool, device=input_values.device)
        else:
            frame_mask = self.hubert._get_feature_vector_attention_mask(frames, attention_mask)
        if mask_time_indices is None:
            mask_time_indices = self.compute_mask(frame_mask)
        hidden = torch.func.functional_call(
            self.hubert,
            scaled_feature_encoder(self.hubert, self.head_config.feature_grad_mult),
            (input_values,),
            {"attention_mask": attention_mask, "mask_time_indices": mask_time_indices},
            strict=False,
        )[0]
        if labels is None:
            return HubertPreTrainingOutput()
        if labels.dim() == 2:
            labels = labels.unsqueeze(-1)
        if labels.shape[1] != frames or labels.shape[2] != len(self.label_embeddings):
            raise ValueError(
                f"labels of shape {tuple(labels.shape)} do not fit {frames} frames and "
                f"{len(self.label_embeddings)} codebook(s)."
            )
        valid = frame_mask & (labels >= 0).all(-1)
        masked, unmasked = valid & mask_time_indices, valid & ~mask_time_indices
        projected = self.final_proj(hidden).chunk(len(self.label_embeddings), dim=-1)
        head = self.head_config
        zero = hidden.new_zeros(())
        masked_loss, unmasked_loss, correct = zero, zero, zero
        for codebook, (projection, embedding) in enumerate(zip(projected, self.label_embeddings)):
            targets = labels[..., codebook]

            def cross_entropy(selection):
                logits = F.normalize(projection[selection], dim=-1) @ F.normalize(embedding.weight, dim=-1).T
                logits = logits / head.logit_temperature
                return F.cross_entropy(logits, targets[selection]) if selection.any() else zero, logits

            loss, logits = cross_entropy(masked)
            masked_loss = masked_loss + loss
            if masked.any():
                correct = correct + (logits.argmax(-1) == targets[masked]).float().mean()
            if head.unmasked_weight > 0:
                unmasked_loss = unmasked_loss + cross_entropy(unmasked)[0]
        loss = head.masked_weight * masked_loss + head.unmasked_weight * unmasked_loss
        return HubertPreTrainingOutput(
            loss=loss,
            masked_loss=masked_loss.detach(),
            unmasked_loss=unmasked_loss.detach(),
            masked_accuracy=correct.detach() / len(self.label_embeddings),
        )

    def save_head(self, folder: str | os.PathLike) -> None:
        """Write the head's settings and weights (projection, label embeddings) to `folder`, apart from the encoder."""
        os.makedirs(folder, exist_ok=True)
        state = {
            key: value.detach().cpu().contiguous()
            for key, value in self.state_dict().items()
            if not key.startswith("hubert.")
        }
        save_file(state, os.path.join(folder, HEAD_WEIGHTS))
        with open(os.path.join(folder, HEAD_CONFIG), "w") as file:
            json.dump(asdict(self.head_config), file, indent=2)

    @classmethod
    def from_encoder_and_head(
        cls, encoder_folder: str | os.PathLike, head_folder: str | os.PathLike | None = None
    ) -> "HubertForPreTraining":
        """The encoder saved in `encoder_folder` with the head `save_head` wrote (default: its `pretraining_head/`)."""
        head_folder = head_folder or os.path.join(encoder_folder, HEAD_DIR)
        with open(os.path.join(head_folder, HEAD_CONFIG)) as file:
            head_config = PretrainingHeadConfig(**json.load(file))
        model = cls(HubertConfig.from_pretrained(encoder_folder), head_config)
        model.hubert = HubertModel.from_pretrained(encoder_folder)
        model.load_state_dict(load_file(os.path.join(head_folder, HEAD_WEIGHTS)), strict=False)
        return model


class PretrainingTrainer(Trainer):
    """A `Trainer` of `HubertForPreTraining` whose logs add the masked-frame accuracy and the masked and unmasked
    losses (means since the last log, averaged over processes)."""

    LOGGED = ("masked_accuracy", "masked_loss", "unmasked_loss")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._logged_terms = {"train": [], "eval": []}

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, HubertPreTrainingOutput]:
        """The model's loss; its accuracy and loss parts are kept for the next log."""
        outputs = model(**inputs)
        if outputs.loss is not None:
            terms = torch.stack([getattr(outputs, name).float() for name in self.LOGGED])
            self._logged_terms["train" if model.training else "eval"].append(terms)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add `masked_accuracy`, `masked_loss` and `unmasked_loss` (`eval_...` in evaluation logs)."""
        kept = pop_logged_terms(self, logs)
        if kept is not None:
            prefix, values = kept
            logs.update({f"{prefix}{name}": round(value, 4) for name, value in zip(self.LOGGED, values)})
        super().log(logs, start_time)


def align_labels_to_frames(labels_100hz: np.ndarray, frames: int) -> np.ndarray:
    """Labels of 10 ms frames down to the model's 20 ms frames as HuBERT's recipe does: frame i takes label 2 i."""
    indices = np.arange(frames) * 2
    if frames and indices[-1] >= len(labels_100hz):
        raise ValueError(f"{len(labels_100hz)} labels at 100 Hz cannot cover {frames} frames at 50 Hz.")
    return labels_100hz[indices]
