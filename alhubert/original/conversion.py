# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Conversion of original DistilALHuBERT checkpoints (S3PRL `.ckpt` files) into Transformers ALHuBERT models.

An original checkpoint is a pickled dict: the student's state dict under `"alhubert"`, the model settings under
`Config["alhubert"]`, and training state (`"Optimizer"`, `"Step"`, an `argparse.Namespace` under `"Args"`).
"""

import argparse
import ast
import hashlib
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from transformers.utils import logging

from ..hub.model_cards import escape_text, write_model_card
from ..hub.upload import stage_for_upload, upload_staged
from ..models.configuration_alhubert import MAX_CONV_LAYERS, MAX_LAYER_APPLICATIONS, MAX_SIZES, AlHubertConfig
from ..models.modeling_alhubert import AlHubertModel
from ..utils.errors import one_line
from ..utils.files import check_replaceable_folder, check_writable_folder, make_staging_folder, replace_folder
from ..utils.model_checks import refuse_non_finite_outputs


MODELS_DIR = Path(__file__).resolve().parent.parent / "models"  # the modules a saved folder may ship as remote code


logger = logging.get_logger(__name__)

# The only globals besides tensors and plain containers that original checkpoints pickle (their `"Args"`).
ALLOWED_GLOBALS = (argparse.Namespace,)
# MAX_CONV_LAYERS (longest feature encoder, bounds `[...] * n` expansion) and MAX_LAYER_APPLICATIONS (encoder_layers x
# repeat_time) are AlHubertConfig's own bounds. A conv-layer string is at most this long (HuBERT's is 51 characters;
# 64 layers written out one by one take about 900) and nests at most this deep, checked before it is parsed.
MAX_CONV_SPEC_CHARS = 4096
MAX_CONV_SPEC_DEPTH = 2 * MAX_CONV_LAYERS  # e.g. 64 single-layer lists joined by +
# Spellings of booleans accepted in Config["alhubert"] (a YAML or argparse round trip can leave strings).
_BOOLEAN_STRINGS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
# Integer settings of Config["alhubert"] that size the model (their values are checked against the weights' shapes),
# each with the AlHubertConfig setting, bounded in MAX_SIZES, it becomes (the layer counts: MAX_LAYER_APPLICATIONS).
_INTEGER_SETTINGS = {
    "encoder_layers": None,
    "repeat_time": None,
    "encoder_embed_dim": "hidden_size",
    "encoder_ffn_embed_dim": "intermediate_size",
    "encoder_attention_heads": "num_attention_heads",
    "conv_pos": "num_conv_pos_embeddings",
    "conv_pos_groups": "num_conv_pos_embedding_groups",
}

_EXTRACTOR_MODES = {"default": "group", "layer_norm": "layer"}
_ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "tanh": "tanh", "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new"}
# Original state dict keys that belong to the distillation/pre-training heads, not to the feature model.
_DROPPED_KEYS = re.compile(r"^(label_embs_concat|final_proj\..+)$")
# Original key -> Transformers key. Every original key must match one rule (or `_DROPPED_KEYS`).
_RENAME_RULES = (
    (r"^mask_emb$", "masked_spec_embed"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)$", r"feature_extractor.conv_layers.\1.conv.\2"),
    (
        r"^feature_extractor\.conv_layers\.(\d+)\.2(\.1)?\.(weight|bias)$",
        r"feature_extractor.conv_layers.\1.layer_norm.\3",
    ),
    (r"^layer_norm\.(weight|bias)$", r"feature_projection.layer_norm.\1"),
    (r"^post_extract_proj\.(weight|bias)$", r"feature_projection.projection.\1"),
    (r"^encoder\.pos_conv\.0\.bias$", "encoder.pos_conv_embed.conv.bias"),
    (
        r"^encoder\.pos_conv\.0\.(weight_g|parametrizations\.weight\.original0)$",
        "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
    ),
    (
        r"^encoder\.pos_conv\.0\.(weight_v|parametrizations\.weight\.original1)$",
        "encoder.pos_conv_embed.conv.parametrizations.weight.original1",
    ),
    (
        r"^encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)$",
        r"encoder.layers.\1.attention.\2_proj.\3",
    ),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)$", r"encoder.layers.\1.layer_norm.\2"),
    (r"^encoder\.layers\.(\d+)\.fc1\.(weight|bias)$", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.fc2\.(weight|bias)$", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"^encoder\.layer_norm\.(weight|bias)$", r"encoder.layer_norm.\1"),
)


class UntrustedCheckpointError(ValueError):
    """A checkpoint needs Python globals beyond the ones original DistilALHuBERT checkpoints use."""


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """Parse the original `extractor_conv_feature_layers` string into `(channels, kernel, stride)` triples.

    Accepts what the original writes: list/tuple literals of integers, `+` between sequences and `*` by an integer,
    e.g. `"[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"`. Nothing is executed; anything else is a `ValueError`.
    """
    if not isinstance(spec, str):
        raise ValueError(f"extractor_conv_feature_layers must be a string, got {type(spec).__name__}.")
    if len(spec) > MAX_CONV_SPEC_CHARS:
        raise ValueError(
            f"extractor_conv_feature_layers is {len(spec):,} characters long, more than the {MAX_CONV_SPEC_CHARS} a "
            f"feature encoder of at most {MAX_CONV_LAYERS} layers needs; the checkpoint is corrupt or crafted."
        )
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as error:
        reason = error.msg if isinstance(error, SyntaxError) else "nested too deeply"
        raise ValueError(f"extractor_conv_feature_layers {spec!r} is not a valid expression: {reason}.") from None
    layers = _evaluate_conv_node(tree.body, spec, depth=0)
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"extractor_conv_feature_layers {spec!r} must describe a non-empty list of conv layers.")
    for layer in layers:
        if not (isinstance(layer, tuple) and len(layer) == 3 and all(isinstance(v, int) and v > 0 for v in layer)):
            raise ValueError(
                f"extractor_conv_feature_layers {spec!r}: each conv layer must be a (channels, kernel, stride) tuple "
                f"of positive integers, got {layer!r}."
            )
    return layers


def _evaluate_conv_node(node, spec, depth):
    """Evaluate one node of the conv-layer grammar (int, list/tuple literal, sequence + sequence, sequence * int)."""
    if depth > MAX_CONV_SPEC_DEPTH:
        raise ValueError(
            f"extractor_conv_feature_layers nests more than {MAX_CONV_SPEC_DEPTH} levels of lists, + and *; write "
            'it as e.g. "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2" (the checkpoint is corrupt or crafted).'
        )
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate_conv_node(item, spec, depth + 1) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _evaluate_conv_node(node.left, spec, depth + 1), _evaluate_conv_node(node.right, spec, depth + 1)
        if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (list, tuple)):
            result = left + right
        elif isinstance(node.op, ast.Mult) and {type(left), type(right)} in ({list, int}, {tuple, int}):
            sequence, count = (left, right) if isinstance(right, int) else (right, left)
            if count < 0 or len(sequence) * count > MAX_CONV_LAYERS:
                raise ValueError(f"extractor_conv_feature_layers {spec!r}: repeat count {count} is out of range.")
            result = sequence * count
        else:
            raise ValueError(
                f"extractor_conv_feature_layers {spec!r}: unsupported operands for "
                f"{'+' if isinstance(node.op, ast.Add) else '*'} ({type(left).__name__}, {type(right).__name__}); "
                "only list + list and list * int are allowed."
            )
        if len(result) > MAX_CONV_LAYERS:
            raise ValueError(f"extractor_conv_feature_layers {spec!r} describes more than {MAX_CONV_LAYERS} layers.")
        return result
    raise ValueError(
        f"extractor_conv_feature_layers {spec!r} contains {ast.unparse(node)!r} ({type(node).__name__}), which the "
        "conv-layer grammar does not allow: use integer tuples in lists joined by + and repeated with * int, "
        'e.g. "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2".'
    )


def load_original_checkpoint(path: str | os.PathLike, trust_checkpoint: bool = False) -> dict:
    """Load an original `.ckpt` safely and check it holds an ALHuBERT student (`"alhubert"` and `Config["alhubert"]`).
    Only tensors, plain containers and `argparse.Namespace` are unpickled; with `trust_checkpoint=True` any pickled
    object is (this can run code from the file: only for files from a trusted source)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint not found: {path}")
    _check_zip_records(path)
    if trust_checkpoint:
        logger.warning(f"Loading {path} with weights_only=False (trust_checkpoint): pickled code in it can run.")
    checkpoint = _torch_load(path, weights_only=not trust_checkpoint)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not the dict of an original checkpoint.")
    if "alhubert" not in checkpoint:
        if "Distiller" in checkpoint:
            raise ValueError(
                f"{path} is a DistilHuBERT checkpoint (its student is stored under 'Distiller'), not a DistilALHuBERT "
                "one (stored under 'alhubert'). DistilHuBERT has no layer sharing: use S3PRL's 'distiller' upstream "
                "or a transformers HubertModel for it."
            )
        raise ValueError(
            f"{path} has no 'alhubert' entry (top-level keys: {sorted(map(str, checkpoint))}); it is not an original "
            "DistilALHuBERT checkpoint."
        )
    config = checkpoint.get("Config")
    if not isinstance(config, dict) or not isinstance(config.get("alhubert"), dict):
        raise ValueError(f"{path} has no Config['alhubert'] dict, so its architecture is unknown; cannot convert it.")
    state_dict = checkpoint["alhubert"]
    if not isinstance(state_dict, dict):
        raise ValueError(
            f"{path}: the student's weights ('alhubert') are a {type(state_dict).__name__}, not a dict of named "
            "tensors; the file is not a valid DistilALHuBERT checkpoint."
        )
    not_tensors = [
        f"{key!r} ({type(value).__name__})"
        for key, value in state_dict.items()
        if not isinstance(key, str) or not torch.is_tensor(value)
    ]
    if not_tensors:
        raise ValueError(
            f"{path}: the student's weights hold entries that are not named tensors: {', '.join(not_tensors[:5])}"
            f"{' ...' if len(not_tensors) > 5 else ''}; the file is not a valid DistilALHuBERT checkpoint."
        )
    return checkpoint


def _check_zip_records(path: Path):
    """Refuse, from the zip directory alone, a checkpoint whose records would expand beyond the file: `torch.save`
    stores every record uncompressed, and `torch.load` inflates each record in full, even those the conversion drops
    (a few MB of deflated zeros can claim gigabytes)."""
    if not zipfile.is_zipfile(path):
        return  # the legacy (non-zip) format has no compressed records
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a PyTorch checkpoint written by torch.save ({one_line(error)}).") from None
    for record in records:
        if record.compress_type != zipfile.ZIP_STORED or record.file_size > size:
            raise ValueError(
                f"{path}: the record {record.filename} is compressed ({record.compress_size:,} bytes claiming "
                f"{record.file_size:,}); torch.save stores records uncompressed, so the file is crafted or was "
                "repacked. It is not loaded (that would inflate every record); save the checkpoint again with "
                "torch.save."
            )


def _torch_load(path, weights_only):
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (RuntimeError, KeyError, EOFError, ValueError, pickle.UnpicklingError) as error:
        refused = _refused_globals(path, error) if weights_only else []
        if refused:
            raise UntrustedCheckpointError(
                f"{path} pickles Python objects that original DistilALHuBERT checkpoints do not contain: "
                f"{', '.join(refused)} (only tensors, plain containers and argparse.Namespace are allowed). Loading "
                "them can run arbitrary code. If you trust the file's source, pass trust_checkpoint=True "
                "(--trust_checkpoint)."
            ) from None
        raise ValueError(
            f"{path} is not a PyTorch checkpoint written by torch.save; it could not be read ({type(error).__name__})."
        ) from error


def _refused_globals(path, error) -> list[str]:
    """Names of the globals that made the weights-only unpickler refuse `path` (empty when it failed otherwise)."""
    if not isinstance(error, pickle.UnpicklingError):
        return []
    allowed = {f"{cls.__module__}.{cls.__qualname__}" for cls in ALLOWED_GLOBALS}
    if zipfile.is_zipfile(path):
        try:
            return sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) - allowed)
        except (RuntimeError, ValueError):
            return []
    return sorted(set(re.findall(r"unsupported GLOBAL (\S+)", str(error))) - allowed)


def config_from_original(original: dict) -> AlHubertConfig:
    """Map an original `Config["alhubert"]` dict to the equivalent `AlHubertConfig` (cyclic layer sharing)."""
    required = (*_INTEGER_SETTINGS, "layer_norm_first", "extractor_conv_feature_layers")
    missing = [name for name in required if name not in original]
    if missing:
        raise ValueError(f"Config['alhubert'] lacks {missing}; these settings define the architecture.")
    mode = original.get("extractor_mode", "default")
    if mode not in _EXTRACTOR_MODES:
        raise ValueError(f"Unknown extractor_mode {mode!r}; original models use one of {sorted(_EXTRACTOR_MODES)}.")
    activation = original.get("activation_fn", "gelu")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"Unsupported activation_fn {activation!r}; supported: {sorted(_ACTIVATIONS)}.")
    for name in (*_INTEGER_SETTINGS, "mask_length", "mask_channel_length"):
        value = original.get(name, 10)  # the sizes are present (checked above); 10 is the mask lengths' default
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Config['alhubert']['{name}'] must be a positive integer, got {value!r}.")
        limit = MAX_SIZES.get(_INTEGER_SETTINGS.get(name))
        if limit is not None and value > limit:
            raise ValueError(
                f"Config['alhubert']['{name}'] is {value:,}, more than the {limit:,} allowed (AlHubertConfig's "
                f"{_INTEGER_SETTINGS[name]}); the file is corrupt or crafted."
            )
    groups, repeats = original["encoder_layers"], original["repeat_time"]
    if groups * repeats > MAX_LAYER_APPLICATIONS:
        raise ValueError(
            f"Config['alhubert'] asks for encoder_layers x repeat_time = {groups} x {repeats} layer applications, "
            f"more than the {MAX_LAYER_APPLICATIONS} this converter allows (the released models have 12); the file is "
            "corrupt or crafted."
        )
    for name in (
        "dropout",
        "attention_dropout",
        "activation_dropout",
        "dropout_input",
        "encoder_layerdrop",
        "mask_prob",
        "mask_channel_prob",
    ):
        value = original.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"Config['alhubert']['{name}'] must be a number between 0 and 1, got {value!r}.")
    if original.get("extractor_dropout", 0.0):
        logger.info(
            "extractor_dropout (dropout inside the conv feature encoder) has no Transformers equivalent; "
            "it only affects training and is not kept."
        )
    conv_bias, layer_norm_first, normalize = (
        _boolean(original, name, False) for name in ("conv_bias", "layer_norm_first", "normalize")
    )
    conv_layers = parse_conv_layers(original["extractor_conv_feature_layers"])
    try:
        return AlHubertConfig(
            conv_dim=[channels for channels, _, _ in conv_layers],
            conv_kernel=[kernel for _, kernel, _ in conv_layers],
            conv_stride=[stride for _, _, stride in conv_layers],
            conv_bias=conv_bias,
            feat_extract_norm=_EXTRACTOR_MODES[mode],
            feat_extract_activation="gelu",
            feat_proj_layer_norm=True,
            hidden_size=original["encoder_embed_dim"],
            intermediate_size=original["encoder_ffn_embed_dim"],
            num_attention_heads=original["encoder_attention_heads"],
            hidden_act=_ACTIVATIONS[activation],
            num_conv_pos_embeddings=original["conv_pos"],
            num_conv_pos_embedding_groups=original["conv_pos_groups"],
            do_stable_layer_norm=layer_norm_first,
            num_hidden_groups=groups,
            num_hidden_layers=groups * repeats,
            layer_sharing="cycle",
            hidden_dropout=original.get("dropout", 0.1),
            attention_dropout=original.get("attention_dropout", 0.1),
            activation_dropout=original.get("activation_dropout", 0.0),
            feat_proj_dropout=original.get("dropout_input", 0.0),
            layerdrop=original.get("encoder_layerdrop", 0.0),
            mask_time_prob=original.get("mask_prob", 0.65),
            mask_time_length=original.get("mask_length", 10),
            mask_feature_prob=original.get("mask_channel_prob", 0.0),
            mask_feature_length=original.get("mask_channel_length", 10),
            do_normalize=normalize,
        )
    except (ValueError, TypeError, StrictDataclassError) as error:  # the config's own validation
        raise ValueError(f"Config['alhubert'] describes no valid ALHuBERT model: {error}".replace("\n", " ")) from None


def _boolean(original: dict, name: str, default: bool | None = None) -> bool:
    """A boolean setting read strictly: True/False, 0/1 or their usual strings ("False" is False, not a non-empty
    string); anything else is a `ValueError` naming the setting."""
    value = original.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_STRINGS:
        return _BOOLEAN_STRINGS[value.strip().lower()]
    raise ValueError(
        f"Config['alhubert']['{name}'] must be a boolean (True/False), got {value!r}; the checkpoint's settings are "
        "corrupt."
    )


def convert_state_dict(original_state_dict: dict, model: AlHubertModel) -> dict:
    """Rename every original tensor to `model`'s key and check it against `model`'s shapes: a missing
    `post_extract_proj` becomes an identity projection, `label_embs_concat` and `final_proj.*` are dropped (logged),
    and any other unknown or missing key, or a shape mismatch, is a `ValueError`."""
    expected = model.state_dict()
    converted, unexpected = {}, []
    for key, tensor in original_state_dict.items():
        if not torch.is_tensor(tensor):
            raise ValueError(
                f"The checkpoint's {key!r} is a {type(tensor).__name__}, not a tensor; the file is corrupt."
            )
        if _DROPPED_KEYS.match(key):
            logger.info(f"Dropping {key}: a pre-training head of the original, not part of the feature model.")
            continue
        new_key = next((re.sub(old, new, key) for old, new in _RENAME_RULES if re.match(old, key)), None)
        if new_key == "masked_spec_embed" and new_key not in expected:
            logger.info("Dropping mask_emb: the configuration has no time or feature masking (mask probability 0).")
            continue
        if new_key is None or new_key not in expected:
            unexpected.append(key)
            continue
        converted[new_key] = tensor
    if "feature_projection.projection.weight" not in converted and not any(
        key.startswith("post_extract_proj.") for key in original_state_dict
    ):
        weight = expected["feature_projection.projection.weight"]
        if weight.shape[0] == weight.shape[1]:
            logger.info("No post_extract_proj in the checkpoint (conv dim == embed dim): using an identity projection")
            converted["feature_projection.projection.weight"] = torch.eye(weight.shape[0], dtype=weight.dtype)
            converted["feature_projection.projection.bias"] = torch.zeros(weight.shape[0], dtype=weight.dtype)
    missing = sorted(set(expected) - set(converted))
    if unexpected or missing:
        raise ValueError(
            "The checkpoint's weights do not match the architecture in its Config['alhubert']: "
            + (f"unexpected keys {sorted(unexpected)}" if unexpected else "")
            + ("; " if unexpected and missing else "")
            + (f"missing keys (Transformers names) {missing}" if missing else "")
            + ". Check encoder_layers, extractor_mode, conv_bias and encoder_embed_dim in the checkpoint's Config."
        )
    mismatched = [
        f"{key}: checkpoint {tuple(tensor.shape)}, config {tuple(expected[key].shape)}"
        for key, tensor in converted.items()
        if tuple(tensor.shape) != tuple(expected[key].shape)
    ]
    if mismatched:
        raise ValueError(
            "Tensor shapes in the checkpoint differ from those its Config['alhubert'] implies: "
            + "; ".join(mismatched)
            + ". The file's weights and settings are inconsistent; check the dimensions in its Config."
        )
    not_finite = sorted(
        key for key, tensor in converted.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()
    )
    if not_finite:
        raise ValueError(
            f"The checkpoint's weights contain NaN or infinite values in {len(not_finite)} tensor(s): "
            f"{', '.join(not_finite[:8])}{' ...' if len(not_finite) > 8 else ''}. The model would output NaN for "
            "every input; convert a checkpoint saved before training diverged."
        )
    return {key: tensor.to(expected[key].dtype) for key, tensor in converted.items()}


def load_original_model(path: str | os.PathLike, trust_checkpoint: bool = False) -> tuple[AlHubertModel, dict]:
    """Build the `AlHubertModel` (eval mode) equivalent to an original checkpoint; returns it and the checkpoint."""
    checkpoint = load_original_checkpoint(path, trust_checkpoint=trust_checkpoint)
    _check_layer_count(checkpoint["Config"]["alhubert"], checkpoint["alhubert"])
    config = config_from_original(checkpoint["Config"]["alhubert"])
    # Keys, shapes and values are checked on a skeleton without storage, so a config that claims huge dimensions
    # fails before anything is allocated; only a model the weights actually fill is built.
    with torch.device("meta"):
        skeleton = AlHubertModel(config)
    state_dict = convert_state_dict(checkpoint["alhubert"], skeleton)
    model = AlHubertModel(config)
    model.load_state_dict(state_dict, strict=True)
    refuse_non_finite_outputs(model.eval(), f"the checkpoint {path}")
    return model, checkpoint


def _check_layer_count(original: dict, state_dict: dict):
    """`encoder_layers` may not exceed the distinct layers the weights hold (checked before building anything; fewer
    is caught as unexpected keys)."""
    indices = {int(match[1]) for key in state_dict if (match := re.match(r"^encoder\.layers\.(\d+)\.", key))}
    layers = original.get("encoder_layers")
    if isinstance(layers, int) and not isinstance(layers, bool) and layers > len(indices):
        raise ValueError(
            f"Config['alhubert']['encoder_layers'] is {layers} but the checkpoint's weights hold {len(indices)} "
            "distinct encoder layers; the file's weights and settings are inconsistent."
        )


def _card_details(path: Path, checkpoint: dict) -> dict:
    """The converted model's card: where it comes from, the original recipe, its teacher (`base_model`) and data."""
    config = checkpoint["Config"]
    original = config["alhubert"]
    teacher = config.get("teacher", {})
    teacher_path = str(teacher.get("path", "unknown"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    settings = ", ".join(
        f"`{escape_text(f'{name}={original[name]!r}')}`"
        for name in (
            "extractor_mode",
            "extractor_conv_feature_layers",
            "conv_bias",
            "layer_norm_first",
            "encoder_layers",
            "repeat_time",
            "encoder_embed_dim",
            "encoder_ffn_embed_dim",
            "encoder_attention_heads",
            "normalize",
        )
        if name in original
    )
    source = (
        f"Converted from the original DistilALHuBERT checkpoint {escape_text(path.name)} (SHA-256 `{digest}`, "
        f"training step {escape_text(checkpoint.get('Step', 'unknown'))}) with `alhubert convert`. Original settings: "
        f"{settings}. The {original['encoder_layers']} distinct layers are applied in the original cyclic order; "
        "the converter is tested against outputs computed by the original code."
    )
    recipe = {
        "Teacher (original config)": f"{teacher.get('model', 'unknown')} ({Path(teacher_path).name})",
        "Loss": f"{original.get('loss_type', 'unknown')} + {original.get('cosine_loss', 0)} x cosine term",
        "Student / teacher target layers (original numbering)": (
            f"{original.get('student_mid_layers', '?')} / {original.get('teacher_mid_layers', '?')} and the last"
        ),
        "Maximum utterance length (samples)": config.get("task", {}).get("sequence_length", "unknown"),
        "Training steps of this checkpoint": checkpoint.get("Step", "unknown"),
    }
    large_teacher = "hubert_large" in teacher_path.lower()  # HuBERT Base when the teacher is not recognised
    return {
        "source": source,
        # strings from the checkpoint: inert text in the card (no HTML, no headings)
        "recipe": {
            name: value if isinstance(value, (int, float)) else escape_text(value) for name, value in recipe.items()
        },
        "base_model": "facebook/hubert-large-ll60k" if large_teacher else "facebook/hubert-base-ls960",
        "datasets": ["librispeech_asr"],  # the original students were distilled on LibriSpeech 960 h
    }


def convert_original_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    trust_checkpoint: bool = False,
    push_to_hub: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert an original `.ckpt` into a complete Transformers model directory (written atomically).

    The directory holds `config.json` (with `auto_map`), `model.safetensors`, `preprocessor_config.json` (with the
    original's input normalisation), the remote-code modules and a `README.md` model card. A non-empty `output_dir`
    is only replaced with `overwrite=True`. With `push_to_hub="user/name"`, the directory is also uploaded.
    """
    checkpoint_path = Path(checkpoint_path)
    output_dir = Path(os.path.abspath(output_dir))  # "." and ".." get a real name (and parent)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} exists and is not a directory; choose another --output_dir.")
    if output_dir == Path(output_dir.anchor) or output_dir in [Path.cwd(), *Path.cwd().parents]:
        raise ValueError(
            f"--output_dir {output_dir} is the current directory or one of its parents; it cannot be replaced. "
            "Choose a new folder (e.g. --output_dir ./alhubert-converted)."
        )
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{output_dir} is not empty; pass overwrite=True (--overwrite_output_dir) to replace the model in it."
            )
        if output_dir.resolve() in checkpoint_path.resolve().parents:
            raise ValueError(f"The checkpoint {checkpoint_path} is inside {output_dir}; overwriting would delete it.")
        # only a folder of the files a conversion writes (and the ONNX files `alhubert export onnx` may add to it in
        # place) is replaced: the user's other files are never deleted
        remote_code = tuple(path.name for path in MODELS_DIR.glob("*.py") if path.name != "__init__.py")
        written = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md", *remote_code)
        written += ("onnx/model.onnx", "onnx/model_quantized.onnx")
        check_replaceable_folder(output_dir, written, ("alhubert",), "alhubert convert")
    check_writable_folder(output_dir.parent, what=f"converted model {output_dir.name}")
    model, checkpoint = load_original_model(checkpoint_path, trust_checkpoint=trust_checkpoint)
    logger.info(
        f"Converted {checkpoint_path.name}: {model.config.num_hidden_groups} distinct layers x "
        f"{model.config.num_hidden_layers // model.config.num_hidden_groups} repeats, "
        f"{model.num_parameters():,} parameters."
    )

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging_folder(output_dir)
    try:
        model.save_pretrained(staging)
        write_model_card(staging, model.config, model_id=push_to_hub, **_card_details(checkpoint_path, checkpoint))
        replace_folder(staging, output_dir)  # modes follow the umask
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(f"Wrote {output_dir}: {', '.join(sorted(p.name for p in output_dir.iterdir()))}")

    if push_to_hub:
        with tempfile.TemporaryDirectory() as upload_dir:
            stage_for_upload(output_dir, Path(upload_dir) / "upload", repo_id=push_to_hub)
            url = upload_staged(Path(upload_dir) / "upload", push_to_hub)
        logger.info(f"Uploaded {output_dir} to {url}")
    return output_dir


__all__ = [
    "UntrustedCheckpointError",
    "config_from_original",
    "convert_original_checkpoint",
    "convert_state_dict",
    "load_original_checkpoint",
    "load_original_model",
    "parse_conv_layers",
]
