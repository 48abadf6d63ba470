# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""ALHuBERT configuration: HuBERT's settings plus ALBERT-style shared-layer groups.

This file is uploaded to the Hub as remote code: it imports only torch, transformers and huggingface_hub.
"""

import sys
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import HubertConfig, PretrainedConfig


LAYER_SHARING_MODES = ("cycle", "block")

# Bounds on the sizes a configuration may ask for, checked before anything is built, so that a crafted config.json
# (e.g. 10**9 layers) fails in milliseconds with the setting named instead of allocating gigabytes or running for
# minutes. They are far above every HuBERT / wav2vec 2.0 model (HuBERT X-Large: 48 layers, 1280 hidden, 5120 FFN).
MAX_LAYER_APPLICATIONS = 1024  # num_hidden_layers (the released students apply their layers 12 times)
MAX_CONV_LAYERS = 64  # length of conv_dim / conv_kernel / conv_stride (HuBERT has 7)
MAX_SIZES = {
    "hidden_size": 16384,
    "num_attention_heads": 1024,
    "intermediate_size": 65536,
    "num_conv_pos_embeddings": 4096,
    "num_conv_pos_embedding_groups": 16384,
    "vocab_size": 1_000_000,
    "classifier_proj_size": 65536,
    "num_labels": 100_000,
    "conv_dim": 16384,
    "conv_kernel": 4096,
    "conv_stride": 4096,
    "superb_lstm_size": 16384,
    "superb_lstm_layers": 64,
}
# Most parameters a configuration may describe (2**31: 8 GiB of float32 weights; HuBERT X-Large has about 10**9).
MAX_PARAMETERS = 2**31

# Written into every saved config.json so that the Auto classes find the remote code on the Hub.
ALHUBERT_AUTO_MAP = {
    "AutoConfig": "configuration_alhubert.AlHubertConfig",
    "AutoModel": "modeling_alhubert.AlHubertModel",
    "AutoModelForCTC": "modeling_alhubert.AlHubertForCTC",
    "AutoModelForAudioClassification": "modeling_alhubert.AlHubertForSequenceClassification",
}

# The released DistilALHuBERT students: HuBERT Base dimensions, 12 applications of 2, 3 or 4 distinct layers.
_RELEASED_STUDENT = {
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "do_stable_layer_norm": False,
    "feat_extract_norm": "group",
    "conv_bias": False,
    "do_normalize": False,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "layerdrop": 0.0,
}
PRESETS = {
    "small": {**_RELEASED_STUDENT, "num_hidden_groups": 2},
    "middle": {**_RELEASED_STUDENT, "num_hidden_groups": 3},
    "large": {**_RELEASED_STUDENT, "num_hidden_groups": 4},
}


# Set by `import alhubert` (the installed package; remote code leaves it unset): called once, when the first
# configuration of these types is made, to register the model classes, feature extractors and pipeline task with
# Transformers. Importing the package then costs only this file, so its commands start fast.
on_first_config = None


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def receptive_field(config: PretrainedConfig) -> int:
    """Fewest input samples that give one output frame, for any HuBERT or wav2vec 2.0 configuration (400 for
    HuBERT's feature encoder)."""
    field = 1
    for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        field = (field - 1) * stride + kernel
    return field


def estimated_parameters(config: "AlHubertConfig") -> int:
    """About how many parameters the encoder of `config` has (weights of the convolutions, projections and the
    `num_hidden_groups` distinct layers), computed from the sizes alone; 0 for settings of the wrong type."""

    def size(name, default=0):
        value = getattr(config, name, default)
        return value if _is_size(value) else 0

    conv_dim = [value if isinstance(value, int) else 0 for value in (getattr(config, "conv_dim", None) or ())]
    conv_kernel = [value if isinstance(value, int) else 0 for value in (getattr(config, "conv_kernel", None) or ())]
    hidden, ffn = size("hidden_size"), size("intermediate_size")
    convolutions = sum(
        channels_in * channels_out * kernel
        for channels_in, channels_out, kernel in zip([1, *conv_dim], conv_dim, conv_kernel)
    )
    groups = max(size("num_conv_pos_embedding_groups"), 1)
    positional = hidden * (hidden // groups) * size("num_conv_pos_embeddings")
    layer = 4 * hidden * hidden + 2 * hidden * ffn
    head = hidden * max(size("vocab_size"), size("num_labels"), size("classifier_proj_size"))
    distinct = max(size("num_hidden_groups", 1), 1)
    return convolutions + (conv_dim[-1] if conv_dim else 0) * hidden + positional + distinct * layer + head


def _without_locally_served_pipelines(kwargs: dict) -> dict:
    """Drop a saved `custom_pipelines` entry whose tasks this process already serves (`import alhubert` registered
    them): Transformers' `pipeline()` lets a folder's `custom_pipelines` shadow the registered task and then demands
    `trust_remote_code=True`. The entry is what Hub users without the package need; `save_pretrained` writes it again.
    """
    custom_pipelines = kwargs.get("custom_pipelines")
    registry = getattr(sys.modules.get("transformers.pipelines"), "PIPELINE_REGISTRY", None)
    if custom_pipelines and registry is not None and set(custom_pipelines) <= set(registry.get_supported_tasks()):
        kwargs = {name: value for name, value in kwargs.items() if name != "custom_pipelines"}
    return kwargs


@strict
class AlHubertConfig(HubertConfig):
    r"""
    Configuration of an ALHuBERT model: a [`HubertConfig`] whose `num_hidden_layers` layer applications share the
    parameters of `num_hidden_groups` distinct transformer layers.

    num_hidden_layers (`int`, defaults to 12):
        Number of layer applications. `hidden_states` has `num_hidden_layers + 1` entries.
    num_hidden_groups (`int`, defaults to 2):
        Number of distinct layers (parameter sets), between 1 and `num_hidden_layers`.
    layer_sharing (`str`, defaults to `"cycle"`):
        Which distinct layer application `i` uses: `"cycle"` takes layer `i % num_hidden_groups` (the original
        DistilALHuBERT order, L0 L1 L0 L1 ...); `"block"` takes layer `i // (num_hidden_layers // num_hidden_groups)`
        (ALBERT's order, L0 L0 ... L1 L1 ...).
    do_normalize (`bool`, defaults to `False`):
        Whether input waveforms are normalised to zero mean and unit variance (the original's `normalize`). Saved
        feature extractors follow this setting.

    Example:

    ```python
    >>> from alhubert import AlHubertConfig, AlHubertModel
    >>> model = AlHubertModel(AlHubertConfig.from_preset("small"))  # 2 distinct layers x 6 = 12 applications
    ```"""

    model_type = "alhubert"

    num_hidden_groups: int = 2
    layer_sharing: str = "cycle"
    do_normalize: bool = False
    layerdrop: float | int = 0.0

    def __post_init__(self, **kwargs: Any) -> None:
        global on_first_config
        hook, on_first_config = on_first_config, None
        if hook is not None:
            hook()
        self._check_sizes(kwargs.get("num_labels"))
        self._check_architecture()
        super().__post_init__(**_without_locally_served_pipelines(kwargs))

    def _check_architecture(self):
        """Raise a `ValueError` that names the setting to change (before the generic strict-dataclass checks)."""
        if not self.conv_dim or not isinstance(self.num_attention_heads, int) or self.num_attention_heads < 1:
            raise ValueError(
                f"A model needs at least one attention head and one convolution; got num_attention_heads="
                f"{self.num_attention_heads!r} and {len(self.conv_dim or ())} convolutions (conv_dim): fix "
                "config.json."
            )
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); change one of them."
            )
        lengths = {name: len(getattr(self, name)) for name in ("conv_dim", "conv_kernel", "conv_stride")}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"conv_dim, conv_kernel and conv_stride must have the same length, got {lengths}.")
        if self.layer_sharing not in LAYER_SHARING_MODES:
            raise ValueError(f"layer_sharing must be one of {LAYER_SHARING_MODES}, got {self.layer_sharing!r}.")
        if not 1 <= self.num_hidden_groups <= self.num_hidden_layers:
            raise ValueError(
                f"num_hidden_groups ({self.num_hidden_groups}) must be between 1 and num_hidden_layers "
                f"({self.num_hidden_layers})."
            )
        if self.layer_sharing == "block" and self.num_hidden_layers % self.num_hidden_groups != 0:
            raise ValueError(
                f'layer_sharing="block" needs num_hidden_layers ({self.num_hidden_layers}) to be a multiple of '
                f'num_hidden_groups ({self.num_hidden_groups}); use layer_sharing="cycle" or change the counts.'
            )

    def _check_sizes(self, num_labels: Any):
        """Every size within `MAX_SIZES` / `MAX_LAYER_APPLICATIONS`, and the model within `MAX_PARAMETERS`: a crafted
        config must fail here, before a layer or weight is allocated. Wrong types are left to the strict checks.
        `num_labels` is the keyword: the attribute is a property of the label maps, set later."""
        sizes = {"num_hidden_layers": MAX_LAYER_APPLICATIONS, "num_hidden_groups": MAX_LAYER_APPLICATIONS, **MAX_SIZES}
        for name, limit in sizes.items():
            value = num_labels if name == "num_labels" else getattr(self, name, None)
            values = value if isinstance(value, (list, tuple)) else [value]
            if len(values) > MAX_CONV_LAYERS:
                raise ValueError(
                    f"{name} lists {len(values)} convolutions, more than {MAX_CONV_LAYERS}; the config is corrupt or "
                    "crafted."
                )
            for item in values:
                if _is_size(item) and item > limit:
                    raise ValueError(
                        f"{name} is {item:,}, more than the {limit:,} allowed (a real model's is far smaller; the "
                        "config is corrupt or crafted): fix it in config.json."
                    )
        parameters = estimated_parameters(self)
        if parameters > MAX_PARAMETERS:
            raise ValueError(
                f"The config describes about {parameters:,} parameters, more than {MAX_PARAMETERS:,} (8 GiB of "
                "float32 weights); check hidden_size, intermediate_size, num_hidden_groups and conv_dim in "
                "config.json."
            )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "AlHubertConfig":
        """The configuration of a released DistilALHuBERT student: `"small"`, `"middle"` or `"large"`."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    def distinct_layer_index(self, application: int) -> int:
        """Index of the distinct layer that layer application `application` (0-based) uses."""
        if self.layer_sharing == "cycle":
            return application % self.num_hidden_groups
        return application // (self.num_hidden_layers // self.num_hidden_groups)

    @property
    def receptive_field(self) -> int:
        """Fewest input samples that give one output frame (400 for the HuBERT feature encoder)."""
        return receptive_field(self)


@strict
class AlHubertSuperbConfig(AlHubertConfig):
    r"""
    An [`AlHubertConfig`] plus the SUPERB ASR head.

    superb_lstm_size (`int`, defaults to 1024):
        Units of each LSTM direction.
    superb_lstm_layers (`int`, defaults to 2):
        Stacked bidirectional LSTM layers.
    superb_dropout (`float`, defaults to 0.2):
        Dropout between the LSTM layers and before the CTC output layer.
    """

    model_type = "alhubert-superb"

    superb_lstm_size: int = 1024
    superb_lstm_layers: int = 2
    superb_dropout: float = 0.2

    @classmethod
    def from_upstream(cls, upstream_config: AlHubertConfig, **kwargs: Any) -> "AlHubertSuperbConfig":
        """The SUPERB configuration over the encoder described by `upstream_config`."""
        settings = {key: value for key, value in upstream_config.to_dict().items() if key in cls.__dataclass_fields__}
        for key in ("model_type", "architectures", "auto_map", "transformers_version"):
            settings.pop(key, None)
        return cls(**{**settings, **kwargs})


AlHubertConfig.register_for_auto_class()
AlHubertSuperbConfig.register_for_auto_class()

__all__ = ["MAX_LAYER_APPLICATIONS", "AlHubertConfig", "AlHubertSuperbConfig"]
