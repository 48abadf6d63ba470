import argparse
import json
import os
import shutil
import zipfile
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from helpers import padded_batch, tiny_config_kwargs
from helpers_remote import run_without_package
from original_checkpoints import FIXTURES, fixture_inputs, max_difference_on_frames, random_original_checkpoint
from transformers import AutoModel

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.original import run_conversion as conversion_script  # noqa: E402
from alhubert.original.conversion import (
    UntrustedCheckpointError,
    config_from_original,
    convert_original_checkpoint,
    load_original_checkpoint,
    parse_conv_layers,
)


FIXTURE_NAMES = ("tiny_postln", "tiny_preln")
HUBERT_CONV_SPEC = "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"


@pytest.fixture(scope="module")
def converted_fixtures(tmp_path_factory):
    """Both fixture checkpoints converted by the command-line script."""
    root = tmp_path_factory.mktemp("converted")
    for name in FIXTURE_NAMES:
        conversion_script.main(["--checkpoint", str(FIXTURES / f"{name}.ckpt"), "--output_dir", str(root / name)])
    return root


def save_checkpoint(checkpoint, path):
    torch.save(checkpoint, path)
    return path


# --- parity with the original code on the fixtures -------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_converted_fixture_reproduces_original_outputs(converted_fixtures, name):
    model = AutoModel.from_pretrained(converted_fixtures / name).eval()
    assert type(model) is AlHubertModel
    reference, attention_mask = fixture_inputs(name)
    with torch.no_grad():
        outputs = model(reference["wav_padded"], attention_mask=attention_mask, output_hidden_states=True)
    frames = model._get_feature_vector_attention_mask(outputs.last_hidden_state.shape[1], attention_mask)
    assert torch.equal(frames.bool(), reference["frame_mask"].bool())
    assert len(outputs.hidden_states) == model.config.num_hidden_layers + 1
    assert max_difference_on_frames(outputs.last_hidden_state, outputs.hidden_states[1:], reference) <= 1e-5


def test_fixture_configs_are_mapped(converted_fixtures):
    post = AlHubertConfig.from_pretrained(converted_fixtures / "tiny_postln")
    pre = AlHubertConfig.from_pretrained(converted_fixtures / "tiny_preln")
    assert (post.num_hidden_groups, post.num_hidden_layers, post.layer_sharing) == (2, 6, "cycle")
    assert (pre.num_hidden_groups, pre.num_hidden_layers) == (3, 6)
    assert (post.feat_extract_norm, post.conv_bias, post.do_stable_layer_norm) == ("group", False, False)
    assert (pre.feat_extract_norm, pre.conv_bias, pre.do_stable_layer_norm) == ("layer", True, True)
    assert (post.hidden_size, post.num_attention_heads, post.intermediate_size) == (48, 4, 96)
    assert (post.num_conv_pos_embeddings, post.num_conv_pos_embedding_groups) == (16, 4)
    assert list(post.conv_dim) == [32] * 7 and list(post.conv_stride) == [5, 2, 2, 2, 2, 2, 2]
    assert (post.mask_time_prob, post.mask_time_length, post.hidden_dropout) == (0.65, 10, 0.1)
    # the original has no projection when conv dim == embed dim: the converted one is the identity
    projection = AlHubertModel.from_pretrained(converted_fixtures / "tiny_preln").feature_projection.projection
    torch.testing.assert_close(projection.weight, torch.eye(32), atol=0, rtol=0)
    assert not projection.bias.any()


def test_converted_directory_is_complete(converted_fixtures):
    model_dir = converted_fixtures / "tiny_postln"
    names = {path.name for path in model_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "README.md",
        "configuration_alhubert.py",
        "modeling_alhubert.py",
    } <= names
    assert not [name for name in names if name.startswith(".")]
    assert json.loads((model_dir / "config.json").read_text())["auto_map"]["AutoModel"] == (
        "modeling_alhubert.AlHubertModel"
    )
    assert json.loads((model_dir / "preprocessor_config.json").read_text())["do_normalize"] is False
    card = (model_dir / "README.md").read_text()
    assert "tiny_postln.ckpt" in card and "extractor_mode='default'" in card and "repeat_time=3" in card


@pytest.mark.slow
def test_converted_fixtures_load_without_the_package(converted_fixtures):
    output = run_without_package(
        f"""
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel
        for name in {list(FIXTURE_NAMES)!r}:
            reference = load_file({str(FIXTURES)!r} + f"/{{name}}_reference.safetensors")
            mask = (torch.arange(reference["wav_padded"].shape[1])[None] < reference["wav_lengths"][:, None]).long()
            model = AutoModel.from_pretrained(name, trust_remote_code=True).eval()
            with torch.no_grad():
                out = model(reference["wav_padded"], attention_mask=mask, output_hidden_states=True)
            frames = reference["frame_mask"].bool()
            worst = (out.last_hidden_state - reference["last_hidden_state"])[frames].abs().max().item()
            for i, hidden in enumerate(out.hidden_states[1:]):
                worst = max(worst, (hidden - reference[f"hidden_states.{{i}}"])[frames].abs().max().item())
            print(name, type(model).__module__, worst)
        """,
        cwd=converted_fixtures,
    )
    for name in FIXTURE_NAMES:
        line = next(line for line in output.splitlines() if line.startswith(name))
        _, module, worst = line.split()
        assert not module.startswith("alhubert")
        assert float(worst) <= 1e-5


# --- other shapes and options ----------------------------------------------------------------------------------

OPTION_CASES = {
    "group-postln-projection-G1x4": (
        {"feat_extract_norm": "group", "do_stable_layer_norm": False, "num_hidden_groups": 1, "num_hidden_layers": 4},
        HUBERT_CONV_SPEC,
        True,
    ),
    "layer-preln-identity-G3x1-bias": (
        {
            "feat_extract_norm": "layer",
            "do_stable_layer_norm": True,
            "conv_bias": True,
            "conv_dim": (32,) * 7,
            "num_hidden_groups": 3,
            "num_hidden_layers": 3,
        },
        "[(32,10,5)] + 2 * [(32,3,2)] + [(32, 3, 2)] * 2 + [(32,2,2), (32,2,2)]",
        False,
    ),
    "layer-postln-projection-G3x4-normalize": (
        {
            "feat_extract_norm": "layer",
            "do_stable_layer_norm": False,
            "num_hidden_groups": 3,
            "num_hidden_layers": 12,
            "conv_dim": (16,) * 4,
            "conv_kernel": (10, 8, 4, 4),
            "conv_stride": (5, 4, 2, 2),
            "do_normalize": True,
        },
        "[(16, 10, 5), (16, 8, 4)] + ([(16, 4, 2)] * 2)",
        True,
    ),
    "group-preln-identity-G1x1": (
        {
            "feat_extract_norm": "group",
            "do_stable_layer_norm": True,
            "num_hidden_groups": 1,
            "num_hidden_layers": 1,
            "conv_dim": (32,) * 7,
        },
        "[(32,10,5)] + [(32,3,2)]*4 + [(32,2,2)]*2",
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_original_format_checkpoints_with_other_options(tmp_path, case):
    overrides, conv_spec, projection = OPTION_CASES[case]
    config = AlHubertConfig(**tiny_config_kwargs(mask_time_prob=0.65, **overrides))
    checkpoint, source = random_original_checkpoint(config, conv_spec, projection=projection, hubert_heads=True)
    assert ("post_extract_proj.weight" in checkpoint["alhubert"]) == projection
    path = save_checkpoint(checkpoint, tmp_path / "original.ckpt")

    converted_dir = convert_original_checkpoint(path, tmp_path / "converted")
    converted = AlHubertModel.from_pretrained(converted_dir).eval()
    for name in (
        "feat_extract_norm",
        "do_stable_layer_norm",
        "conv_bias",
        "num_hidden_groups",
        "num_hidden_layers",
        "do_normalize",
        "hidden_size",
        "intermediate_size",
        "num_attention_heads",
    ):
        assert getattr(converted.config, name) == getattr(config, name), name
    for name in ("conv_dim", "conv_kernel", "conv_stride"):
        assert list(getattr(converted.config, name)) == list(getattr(config, name)), name
    assert converted.config.layer_sharing == "cycle"
    preprocessor = json.loads((converted_dir / "preprocessor_config.json").read_text())
    assert preprocessor["do_normalize"] is config.do_normalize

    expected_state = source.state_dict()
    converted_state = converted.state_dict()
    assert set(converted_state) == set(expected_state)
    for key, tensor in expected_state.items():
        torch.testing.assert_close(converted_state[key], tensor, atol=0, rtol=0, msg=key)

    batch, mask = padded_batch((4000, 3000))
    with torch.no_grad():
        expected = source(batch, attention_mask=mask, output_hidden_states=True)
        actual = converted(batch, attention_mask=mask, output_hidden_states=True)
    for expected_hidden, actual_hidden in zip(expected.hidden_states, actual.hidden_states, strict=True):
        torch.testing.assert_close(actual_hidden, expected_hidden, atol=1e-6, rtol=0)


def test_config_mapping_from_original_names():
    original = {
        "extractor_mode": "layer_norm",
        "extractor_conv_feature_layers": "[(64,10,5)] + [(64,3,2)] * 2",
        "conv_bias": True,
        "conv_pos": 32,
        "conv_pos_groups": 8,
        "encoder_layers": 4,
        "repeat_time": 3,
        "encoder_embed_dim": 96,
        "encoder_ffn_embed_dim": 192,
        "encoder_attention_heads": 6,
        "activation_fn": "relu",
        "layer_norm_first": True,
        "normalize": True,
        "dropout": 0.2,
        "attention_dropout": 0.3,
        "activation_dropout": 0.05,
        "encoder_layerdrop": 0.1,
        "mask_prob": 0.5,
        "mask_length": 5,
        "mask_channel_prob": 0.1,
        "mask_channel_length": 4,
    }
    config = config_from_original(original)
    assert (config.num_hidden_groups, config.num_hidden_layers) == (4, 12)
    assert [config.distinct_layer_index(i) for i in range(6)] == [0, 1, 2, 3, 0, 1]
    assert (config.conv_dim, config.conv_kernel, config.conv_stride) == ([64] * 3, [10, 3, 3], [5, 2, 2])
    assert (config.feat_extract_norm, config.conv_bias, config.do_stable_layer_norm) == ("layer", True, True)
    assert (config.hidden_size, config.intermediate_size, config.num_attention_heads) == (96, 192, 6)
    assert (config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups, config.hidden_act) == (32, 8, "relu")
    assert (config.hidden_dropout, config.attention_dropout, config.activation_dropout, config.layerdrop) == (
        0.2,
        0.3,
        0.05,
        0.1,
    )
    assert (config.mask_time_prob, config.mask_time_length) == (0.5, 5)
    assert (config.mask_feature_prob, config.mask_feature_length) == (0.1, 4)
    assert config.do_normalize is True

    with pytest.raises(ValueError, match="extractor_mode"):
        config_from_original({**original, "extractor_mode": "batch_norm"})
    with pytest.raises(ValueError, match="lacks.*repeat_time"):
        config_from_original({k: v for k, v in original.items() if k != "repeat_time"})
    with pytest.raises(ValueError, match="repeat_time"):
        config_from_original({**original, "repeat_time": 0})


# --- the conv-layer grammar ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2", [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2),
        ("[(32, 10, 5), (32, 3, 2)]", [(32, 10, 5), (32, 3, 2)]),
        ("2 * [(8,3,2)] + ([(8,2,2)] * 1)", [(8, 3, 2), (8, 3, 2), (8, 2, 2)]),
        ("  [(4,2,1)]*3  ", [(4, 2, 1)] * 3),
        ("[(8,3,2)] * 2 * 2", [(8, 3, 2)] * 4),
    ],
)
def test_conv_layer_grammar_accepts_the_original_forms(spec, expected):
    assert parse_conv_layers(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("__import__('os').system('x')", "does not allow"),
        ("[(512,10,5)] * 10**9", "does not allow"),
        ("[(512,10,5)] * 100000", "out of range"),
        ("[(512,10,5)] * -1", "does not allow"),
        ("[(512,10)]", "channels, kernel, stride"),
        ("[(512,10,5.0)]", "does not allow"),
        ("[(True,10,5)]", "does not allow"),
        ("[(0,10,5)]", "positive"),
        ("[layer]", "does not allow"),
        ("[(512,10,5)] - []", "does not allow"),
        ("[(512,10,5)] + (1,2,3)", "unsupported operands"),
        ("[(512,10,5)] * [(512,10,5)]", "unsupported operands"),
        ("lambda: [(512,10,5)]", "does not allow"),
        ("[(512,10,5)", "not a valid expression"),
        ("[]", "non-empty"),
        ("", "not a valid expression"),
        ("(512,10,5)", "list"),
    ],
)
def test_conv_layer_grammar_refuses_everything_else(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_conv_layers(spec)


def test_conv_layer_grammar_never_executes(tmp_path):
    marker = tmp_path / "executed"
    with pytest.raises(ValueError):
        parse_conv_layers(f"__import__('pathlib').Path({str(marker)!r}).touch() or [(8,3,2)]")
    assert not marker.exists()
    with pytest.raises(ValueError, match="conv_feature_layers"):
        parse_conv_layers(None)


def test_malicious_conv_spec_in_a_checkpoint_is_refused(tmp_path):
    checkpoint, _ = random_original_checkpoint(AlHubertConfig(**tiny_config_kwargs()), HUBERT_CONV_SPEC)
    checkpoint["Config"]["alhubert"]["extractor_conv_feature_layers"] = "__import__('os').system('x')"
    path = save_checkpoint(checkpoint, tmp_path / "evil_spec.ckpt")
    with pytest.raises(ValueError, match="extractor_conv_feature_layers"):
        convert_original_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- safe loading and refusals ---------------------------------------------------------------------------------


@pytest.fixture
def tiny_checkpoint():
    checkpoint, _ = random_original_checkpoint(AlHubertConfig(**tiny_config_kwargs()), HUBERT_CONV_SPEC)
    return checkpoint


def test_checkpoint_with_a_foreign_global_needs_trust(tmp_path, tiny_checkpoint):
    tiny_checkpoint["Args"] = argparse.Namespace(lr=Fraction(1, 3))
    path = save_checkpoint(tiny_checkpoint, tmp_path / "foreign.ckpt")
    with pytest.raises(UntrustedCheckpointError, match=r"fractions\.Fraction.*trust_checkpoint"):
        load_original_checkpoint(path)
    with pytest.raises(UntrustedCheckpointError):
        conversion_script.main(["--checkpoint", str(path), "--output_dir", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()
    trusted = tmp_path / "trusted"
    conversion_script.main(["--checkpoint", str(path), "--output_dir", str(trusted), "--trust_checkpoint"])
    assert (trusted / "model.safetensors").is_file()


class _MakesDirectoryWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_code_in_a_checkpoint_is_never_run(tmp_path, tiny_checkpoint):
    marker = tmp_path / "code_ran"
    tiny_checkpoint["Args"] = _MakesDirectoryWhenUnpickled(str(marker))
    path = save_checkpoint(tiny_checkpoint, tmp_path / "malicious.ckpt")
    with pytest.raises(UntrustedCheckpointError, match=r"mkdir"):
        load_original_checkpoint(path)
    assert not marker.exists()


def test_files_that_are_not_torch_checkpoints(tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    archive = tmp_path / "archive.ckpt"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("file.txt", "hello")
    for path in (text, archive):
        with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
            load_original_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_original_checkpoint(tmp_path / "missing.ckpt")


def test_checkpoints_without_an_alhubert_student(tmp_path, tiny_checkpoint):
    distiller = {"Distiller": tiny_checkpoint["alhubert"], "Config": {}, "Step": 1}
    with pytest.raises(ValueError, match="DistilHuBERT"):
        load_original_checkpoint(save_checkpoint(distiller, tmp_path / "distiller.ckpt"))
    with pytest.raises(ValueError, match="no 'alhubert' entry"):
        load_original_checkpoint(save_checkpoint({"model": {}}, tmp_path / "other.ckpt"))
    with pytest.raises(ValueError, match="not the dict"):
        load_original_checkpoint(save_checkpoint([torch.zeros(1)], tmp_path / "list.ckpt"))
    del tiny_checkpoint["Config"]
    with pytest.raises(ValueError, match=r"Config\['alhubert'\]"):
        load_original_checkpoint(save_checkpoint(tiny_checkpoint, tmp_path / "no_config.ckpt"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: sd.pop("encoder.layers.1.fc1.weight"), r"missing keys.*encoder\.layers\.1\.feed_forward"),
        (lambda sd: sd.pop("layer_norm.bias"), r"missing keys.*feature_projection\.layer_norm\.bias"),
        (lambda sd: sd.__setitem__("encoder.layers.2.fc1.weight", torch.zeros(64, 32)), r"unexpected keys.*layers\.2"),
        (lambda sd: sd.__setitem__("encoder.extra_head.weight", torch.zeros(3)), r"unexpected keys.*extra_head"),
        (
            lambda sd: sd.__setitem__("encoder.layers.0.fc1.weight", torch.zeros(60, 32)),
            r"encoder\.layers\.0\.feed_forward\.intermediate_dense\.weight: checkpoint \(60, 32\), config \(64, 32\)",
        ),
    ],
    ids=["missing-layer-key", "missing-norm", "extra-layer", "unknown-key", "shape"],
)
def test_weights_that_do_not_match_the_config(tmp_path, tiny_checkpoint, edit, message):
    edit(tiny_checkpoint["alhubert"])
    path = save_checkpoint(tiny_checkpoint, tmp_path / "broken.ckpt")
    with pytest.raises(ValueError, match=message):
        convert_original_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.*")), "staging directory left behind"


def test_missing_projection_with_different_dims_is_an_error(tmp_path, tiny_checkpoint):
    tiny_checkpoint["alhubert"].pop("post_extract_proj.weight")
    tiny_checkpoint["alhubert"].pop("post_extract_proj.bias")
    with pytest.raises(ValueError, match=r"missing keys.*feature_projection\.projection"):
        convert_original_checkpoint(save_checkpoint(tiny_checkpoint, tmp_path / "x.ckpt"), tmp_path / "out")


# --- output directory handling ---------------------------------------------------------------------------------


def test_existing_output_is_kept_unless_overwrite(tmp_path, tiny_checkpoint):
    path = save_checkpoint(tiny_checkpoint, tmp_path / "model.ckpt")
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        conversion_script.main(["--checkpoint", str(path), "--output_dir", str(output_dir)])
    # a folder that holds no model is never replaced (nothing the converter did not write is deleted)
    with pytest.raises(FileExistsError, match="holds keep.txt, which alhubert convert does not write"):
        conversion_script.main(["--checkpoint", str(path), "--output_dir", str(output_dir), "--overwrite_output_dir"])
    assert (output_dir / "keep.txt").read_text() == "user data"

    output_dir = tmp_path / "converted"
    conversion_script.main(["--checkpoint", str(path), "--output_dir", str(output_dir)])
    before = (output_dir / "model.safetensors").read_bytes()
    broken = dict(tiny_checkpoint, alhubert={k: v for k, v in tiny_checkpoint["alhubert"].items() if "fc2" not in k})
    broken_path = save_checkpoint(broken, tmp_path / "broken.ckpt")
    with pytest.raises(ValueError, match="missing keys"):
        conversion_script.main(
            ["--checkpoint", str(broken_path), "--output_dir", str(output_dir), "--overwrite_output_dir"]
        )
    assert (output_dir / "model.safetensors").read_bytes() == before

    (output_dir / "model.safetensors").write_bytes(b"stale")
    conversion_script.main(["--checkpoint", str(path), "--output_dir", str(output_dir), "--overwrite_output_dir"])
    assert (output_dir / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    inside = output_dir / "model.ckpt"
    shutil.copy(path, inside)
    with pytest.raises(ValueError, match="inside"):
        convert_original_checkpoint(inside, output_dir, overwrite=True)
    assert inside.is_file()


def test_push_to_hub_uploads_the_converted_directory(tmp_path, tiny_checkpoint, monkeypatch):
    import alhubert.original.conversion

    uploads = []

    def fake_upload(staging_dir, repo_id, **kwargs):
        uploads.append((repo_id, sorted(p.name for p in Path(staging_dir).iterdir())))
        return f"https://huggingface.co/{repo_id}"

    monkeypatch.setattr(alhubert.original.conversion, "upload_staged", fake_upload)
    path = save_checkpoint(tiny_checkpoint, tmp_path / "model.ckpt")
    conversion_script.main(
        ["--checkpoint", str(path), "--output_dir", str(tmp_path / "out"), "--push_to_hub", "someone/alhubert-tiny"]
    )
    assert len(uploads) == 1
    repo_id, names = uploads[0]
    assert repo_id == "someone/alhubert-tiny"
    assert {"config.json", "model.safetensors", "README.md", "modeling_alhubert.py"} <= set(names)
    assert "someone/alhubert-tiny" in (tmp_path / "out" / "README.md").read_text()
