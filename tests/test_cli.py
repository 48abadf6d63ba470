from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import tiny_config_kwargs
from safetensors.numpy import load_file
from typer.testing import CliRunner

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.cli import app
from alhubert.inference.long_audio import num_frames
from alhubert.models.audio import load_audio


runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    paths = [directory / "short.wav", directory / "long.flac"]
    soundfile.write(paths[0], 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    soundfile.write(paths[1], 0.1 * rng.standard_normal(22050 * 3).astype(np.float32), 22050)  # resampled
    return paths


def reference_features(model_dir, path, layer):
    model = AlHubertModel.from_pretrained(model_dir).eval()
    waveform = torch.from_numpy(load_audio(str(path), 16000))[None]
    with torch.no_grad():
        return model(waveform, output_hidden_states=True).hidden_states[layer][0].numpy()


def test_extract_to_safetensors_one_entry_per_file(model_dir, audio_files, tmp_path):
    output = tmp_path / "features.safetensors"
    args = [
        "extract",
        *map(str, audio_files),
        "--model",
        str(model_dir),
        "--layer",
        "3",
        "--output",
        str(output),
        "--threads",
        "1",
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = runner.invoke(app, args)
        assert torch.get_num_threads() == 1  # --threads sets torch's thread count
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, [*args, "--threads", "0", "--overwrite"]).exit_code == 2  # at least 1
    features = load_file(output)
    assert set(features) == set(map(str, audio_files))
    for path in audio_files:
        np.testing.assert_allclose(features[str(path)], reference_features(model_dir, path, 3), atol=1e-5, rtol=0)


def test_extract_to_npy_and_to_a_folder(model_dir, audio_files, tmp_path):
    single = tmp_path / "short.npy"
    result = runner.invoke(app, ["extract", str(audio_files[0]), "-m", str(model_dir), "-o", str(single)])
    assert result.exit_code == 0, result.output
    assert np.load(single).shape == (num_frames(16000, AlHubertConfig(**tiny_config_kwargs())), 32)

    folder = tmp_path / "features"
    result = runner.invoke(
        app, ["extract", *map(str, audio_files), "-m", str(model_dir), "-o", str(folder), "--layer", "0"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in folder.iterdir()) == ["long.npy", "short.npy"]
    np.testing.assert_allclose(
        np.load(folder / "long.npy"), reference_features(model_dir, audio_files[1], 0), atol=1e-5
    )


def test_extract_in_bfloat16_writes_float32_features_close_to_float32(model_dir, audio_files, tmp_path, monkeypatch):
    import alhubert.cli

    monkeypatch.setattr(alhubert.cli, "cpu_has_fast_bf16", lambda: True)
    outputs = {}
    for dtype in ("float32", "bfloat16"):
        outputs[dtype] = tmp_path / f"{dtype}.safetensors"
        args = ["extract", *map(str, audio_files), "-m", str(model_dir), "-o", str(outputs[dtype]), "--dtype", dtype]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    full, half = load_file(outputs["float32"]), load_file(outputs["bfloat16"])
    bf16_unit_roundoff = 2.0**-8
    for path in map(str, audio_files):
        assert half[path].dtype == np.float32 and half[path].shape == full[path].shape
        assert not np.array_equal(half[path], full[path])  # really computed in bf16
        norms = np.linalg.norm(half[path], axis=-1) * np.linalg.norm(full[path], axis=-1)
        cosine = (half[path] * full[path]).sum(-1) / norms
        assert cosine.mean() >= 1 - (8 * bf16_unit_roundoff) ** 2 / 2  # tests/test_bf16_native.py: 8 roundoffs


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_extract_in_bfloat16_warns_on_a_cpu_without_bf16_instructions(
    model_dir, audio_files, tmp_path, monkeypatch, fast_bf16
):
    import alhubert.cli

    monkeypatch.setattr(alhubert.cli, "cpu_has_fast_bf16", lambda: fast_bf16)
    output = tmp_path / "out.npy"
    args = [
        "extract",
        str(audio_files[0]),
        "-m",
        str(model_dir),
        "-o",
        str(output),
        "--dtype",
        "bfloat16",
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert ("no bf16 matrix instructions" in result.output) is not fast_bf16
    assert output.is_file()


@pytest.mark.parametrize(
    "make_args, message",
    [
        (
            lambda audio, model, out: [str(out.parent / "missing.wav"), "-m", model, "-o", str(out)],
            "Audio file not found",
        ),
        (
            lambda audio, model, out: [str(audio[0]), "-m", model, "-o", str(out), "--layer", "7"],
            "layer must be between 0 and 6",
        ),
        (
            lambda audio, model, out: [*map(str, audio), "-m", model, "-o", str(out.with_suffix(".npy"))],
            "holds one array",
        ),
        (
            lambda audio, model, out: [str(audio[0]), "-m", str(out.parent / "no-model"), "-o", str(out)],
            "Cannot load the model",
        ),
    ],
    ids=["missing-audio", "layer-out-of-range", "npy-for-two-files", "missing-model"],
)
def test_extract_errors(model_dir, audio_files, tmp_path, make_args, message):
    output = tmp_path / "out.safetensors"
    result = runner.invoke(app, ["extract", *make_args(audio_files, str(model_dir), output)])
    assert result.exit_code == 1
    assert message in result.output
    assert not output.exists() and not output.with_suffix(".npy").exists()


def test_extract_reports_unreadable_audio_and_keeps_existing_outputs(model_dir, audio_files, tmp_path):
    garbage = tmp_path / "notes.wav"
    garbage.write_text("this is not audio")
    result = runner.invoke(app, ["extract", str(garbage), "-m", str(model_dir), "-o", str(tmp_path / "x.npy")])
    assert result.exit_code == 1 and "Cannot read audio file" in result.output

    existing = tmp_path / "existing.npy"
    np.save(existing, np.zeros(3))
    result = runner.invoke(app, ["extract", str(audio_files[0]), "-m", str(model_dir), "-o", str(existing)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert np.load(existing).tolist() == [0.0, 0.0, 0.0]


def test_info_prints_architecture_and_sharing(model_dir):
    result = runner.invoke(app, ["info", str(model_dir)])
    assert result.exit_code == 0, result.output
    parameters = sum(t.numel() for t in AlHubertModel.from_pretrained(model_dir).state_dict().values())
    assert "cycle: L0 L1 L0 L1 L0 L1" in result.output
    assert f"{parameters:,}" in result.output
    assert runner.invoke(app, ["info", str(model_dir.parent)]).exit_code == 1


@pytest.mark.parametrize(
    "command, flags",
    [
        ("distill", ["--teacher_name_or_path", "--librispeech_root", "--student_layers", "--learning_rate"]),
        ("finetune-ctc", ["--model_name_or_path", "--recipe", "--eval_librispeech_sets", "--do_train"]),
        ("finetune-classification", ["--model_name_or_path", "--label_column_name", "--do_eval"]),
        ("kmeans-targets", ["--num_clusters", "--layer", "--model_name_or_path", "--fit_utterances"]),
        ("pretrain-hubert", ["--labels_dir", "--model_preset", "--mask_prob", "--unmasked_weight"]),
        ("convert", ["--checkpoint", "--output_dir", "--trust_checkpoint"]),
        ("push-to-hub", ["--model_dir", "--repo_id", "--dry_run"]),
    ],
)
def test_training_and_hub_commands_forward_to_their_module_and_explain_every_flag(command, flags):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    for flag in flags:
        assert flag in result.output, flag


def test_scripts_are_thin_wrappers_of_the_package_commands():
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    for name, module in [
        ("distill", "alhubert.training.run_distillation"),
        ("finetune_ctc", "alhubert.training.run_finetune_ctc"),
        ("finetune_classification", "alhubert.training.run_finetune_classification"),
        ("kmeans_targets", "alhubert.training.kmeans_targets"),
        ("pretrain_hubert", "alhubert.training.run_pretrain_hubert"),
        ("convert_original_checkpoint", "alhubert.original.run_conversion"),
        ("push_to_hub", "alhubert.hub.run_upload"),
    ]:
        source = (scripts / f"{name}.py").read_text()
        assert f"from {module} import" in source and len(source.splitlines()) < 20, name


def test_shipped_recipes_are_package_data():
    from alhubert.training.arguments import CONFIGS_DIR, resolve_config_file

    assert {"small", "middle", "large", "demo"} <= {path.stem for path in CONFIGS_DIR.glob("*.yaml")}
    assert resolve_config_file("small") == CONFIGS_DIR / "small.yaml"
    setup = (Path(__file__).resolve().parents[1] / "setup.py").read_text()
    assert "training/configs/*.yaml" in setup


def test_a_training_command_without_the_training_extra_says_what_to_install(monkeypatch):
    import importlib

    real_import = importlib.import_module

    def without_datasets(name, *args):
        if name == "alhubert.training.run_finetune_ctc":
            raise ModuleNotFoundError("No module named 'datasets'", name="datasets")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_datasets)
    result = runner.invoke(app, ["finetune-ctc", "--do_train"])
    assert result.exit_code == 1
    assert 'needs datasets, which is not installed: pip install "alhubert[train]"' in result.output
    assert "Traceback" not in result.output
