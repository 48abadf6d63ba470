"""ONNX export (`alhubert export onnx`, `export_onnx`): parity with PyTorch, weights stored once, int8, CTC, the
torch-free example, Hub staging, bad input."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner


onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2Processor  # noqa: E402

from alhubert import AlHubertConfig, AlHubertForCTC, AlHubertModel, default_feature_extractor  # noqa: E402
from alhubert.cli import app  # noqa: E402
from alhubert.hub.upload import stage_for_upload  # noqa: E402
from alhubert.inference import onnx_export  # noqa: E402
from alhubert.inference.onnx_export import export_onnx  # noqa: E402


REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "onnx_inference.py"
runner = CliRunner()

HIDDEN, INTERMEDIATE, GROUPS, LAYERS = 32, 64, 2, 6
VOCABULARY = ["<pad>", "<unk>", "|", "'", "A", "B", "C", "D", "E", "F", "G", "H"]


def tiny_config(**overrides) -> AlHubertConfig:
    """HuBERT's conv stack with 16 channels and a 32-dim encoder: 2 distinct layers applied 6 times."""
    kwargs = {
        "hidden_size": HIDDEN,
        "num_attention_heads": 4,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_hidden_groups": GROUPS,
        "conv_dim": (16,) * 7,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "vocab_size": len(VOCABULARY),
    }
    return AlHubertConfig(**{**kwargs, **overrides})


def run_session(path, waveforms, attention_mask=None):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if attention_mask is None:
        attention_mask = np.ones(waveforms.shape, dtype=np.int64)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input_values": waveforms, "attention_mask": attention_mask})))


def padded_batch(lengths, seed=0):
    rng = np.random.default_rng(seed)
    waveforms = np.zeros((len(lengths), max(lengths)), dtype=np.float32)
    mask = np.zeros((len(lengths), max(lengths)), dtype=np.int64)
    for row, length in enumerate(lengths):
        waveforms[row, :length] = rng.standard_normal(length)
        mask[row, :length] = 1
    return waveforms, mask


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny ALHuBERT exported into its own folder (onnx/ added) with int8 and all hidden states."""
    directory = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    AlHubertModel(tiny_config()).eval().save_pretrained(directory)
    export_onnx(directory, directory, quantize="int8", all_hidden_states=True)
    return directory


@pytest.fixture(scope="module")
def ctc_export(tmp_path_factory):
    """A tiny CTC model with its processor, exported through the command line into a new folder."""
    directory = tmp_path_factory.mktemp("ctc")
    torch.manual_seed(1)
    model = AlHubertForCTC(tiny_config()).eval()
    model.save_pretrained(directory / "model")
    (directory / "vocab.json").write_text(json.dumps({token: index for index, token in enumerate(VOCABULARY)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(directory / "vocab.json"),
        unk_token="<unk>",
        pad_token="<pad>",
        word_delimiter_token="|",
        bos_token=None,
        eos_token=None,
    )
    Wav2Vec2Processor(feature_extractor=default_feature_extractor(model.config), tokenizer=tokenizer).save_pretrained(
        directory / "model"
    )
    result = runner.invoke(
        app, ["export", "onnx", str(directory / "model"), str(directory / "export"), "--quantize", "int8"]
    )
    assert result.exit_code == 0, result.output
    return directory / "model", directory / "export", tokenizer


def torch_outputs(model, waveforms, attention_mask=None):
    mask = None if attention_mask is None else torch.from_numpy(attention_mask)
    with torch.no_grad():
        return model(torch.from_numpy(waveforms), attention_mask=mask, output_hidden_states=True)


@pytest.mark.parametrize("lengths", [(8000,), (12345,), (12000, 7000)], ids=["0.5s", "0.77s", "padded-batch-of-2"])
def test_fp32_matches_pytorch(model_dir, lengths):
    model = AlHubertModel.from_pretrained(model_dir).eval()
    waveforms, mask = padded_batch(lengths)
    expected = torch_outputs(model, waveforms, mask if len(lengths) > 1 else None)
    outputs = run_session(model_dir / "onnx" / "model.onnx", waveforms, mask)
    assert list(outputs) == ["last_hidden_state", "hidden_states"]
    np.testing.assert_allclose(outputs["last_hidden_state"], expected.last_hidden_state.numpy(), atol=1e-4, rtol=0)
    assert outputs["hidden_states"].shape == (LAYERS + 1, *expected.last_hidden_state.shape)
    for layer, hidden_state in enumerate(expected.hidden_states):
        np.testing.assert_allclose(outputs["hidden_states"][layer], hidden_state.numpy(), atol=1e-4, rtol=0)


def initializers(path):
    return {tensor.name: tensor for tensor in onnx.load(str(path)).graph.initializer}


def test_each_shared_weight_is_stored_once(model_dir):
    fp32 = initializers(model_dir / "onnx" / "model.onnx")
    shapes = [tuple(tensor.dims) for tensor in fp32.values()]
    # per distinct layer: q, k, v, out (H x H), the two feed-forward matrices; 6 applications, 2 copies
    assert shapes.count((HIDDEN, HIDDEN)) == 4 * GROUPS
    assert shapes.count((HIDDEN, INTERMEDIATE)) == GROUPS
    assert shapes.count((INTERMEDIATE, HIDDEN)) == GROUPS
    stored = sum(int(np.prod(tensor.dims)) for tensor in fp32.values())
    assert stored <= AlHubertModel.from_pretrained(model_dir).num_parameters()
    layers = {name.split("encoder.layers.")[1].split(".")[0] for name in fp32 if "encoder.layers." in name}
    assert layers == {str(index) for index in range(GROUPS)}


def test_the_graph_has_hubert_convolutions_not_the_pytorch_fast_path(model_dir):
    """The export runs HuBERT's own convolutions: 7 conv layers + the positional conv as Conv nodes, their weights
    int8 in the quantized file (the CPU fast path's matmul form would hide them from the conv quantization)."""
    fp32 = onnx.load(str(model_dir / "onnx" / "model.onnx")).graph
    assert sum(node.op_type == "Conv" for node in fp32.node) == 8
    int8 = initializers(model_dir / "onnx" / "model_quantized.onnx")
    conv_weights = [name for name in int8 if "conv" in name and "weight" in name]
    assert conv_weights and all(
        int8[name].data_type != onnx.TensorProto.FLOAT for name in conv_weights if len(int8[name].dims) == 3
    ), conv_weights


def test_int8_quantizes_every_shared_weight_once_and_stays_close(model_dir):
    int8 = initializers(model_dir / "onnx" / "model_quantized.onnx")
    matrices = [tuple(tensor.dims) for tensor in int8.values() if tensor.data_type == onnx.TensorProto.INT8]
    assert matrices.count((HIDDEN, HIDDEN)) == 4 * GROUPS
    assert matrices.count((HIDDEN, INTERMEDIATE)) == GROUPS and matrices.count((INTERMEDIATE, HIDDEN)) == GROUPS
    floats = [tensor for tensor in int8.values() if tensor.data_type == onnx.TensorProto.FLOAT]
    # what stays float: biases and norm parameters (at most 64 values here); the smallest weight has 160
    assert max(int(np.prod(tensor.dims)) for tensor in floats) <= INTERMEDIATE, "a weight stayed in float"
    fp32_bytes = sum(4 * int(np.prod(t.dims)) for t in initializers(model_dir / "onnx" / "model.onnx").values())
    int8_bytes = sum(int(np.prod(t.dims)) * (1 if t.data_type == onnx.TensorProto.INT8 else 4) for t in int8.values())
    assert int8_bytes < 0.35 * fp32_bytes  # 0.25 for int8 weights, plus float biases, norms and scales
    assert (model_dir / "onnx" / "model_quantized.onnx").stat().st_size < (
        model_dir / "onnx" / "model.onnx"
    ).stat().st_size

    waveforms, _ = padded_batch((16000,), seed=3)
    reference = run_session(model_dir / "onnx" / "model.onnx", waveforms)["hidden_states"]
    quantized = run_session(model_dir / "onnx" / "model_quantized.onnx", waveforms)["hidden_states"]
    cosine = (reference * quantized).sum(-1) / np.linalg.norm(reference, axis=-1) / np.linalg.norm(quantized, axis=-1)
    assert cosine.mean(axis=(1, 2)).min() >= 0.99


def test_ctc_export_gives_pytorchs_argmax_and_processor_files(ctc_export):
    model_path, export_dir, _ = ctc_export
    assert {"config.json", "preprocessor_config.json", "vocab.json", "tokenizer_config.json"} <= {
        path.name for path in export_dir.iterdir()
    }
    assert sorted(path.name for path in (export_dir / "onnx").iterdir()) == ["model.onnx", "model_quantized.onnx"]
    waveforms, _ = padded_batch((16000,), seed=4)
    with torch.no_grad():
        expected = AlHubertForCTC.from_pretrained(model_path).eval()(torch.from_numpy(waveforms)).logits.numpy()
    outputs = run_session(export_dir / "onnx" / "model.onnx", waveforms)
    assert list(outputs) == ["logits"]
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(outputs["logits"].argmax(-1), expected.argmax(-1))


BLOCK_TORCH = textwrap.dedent(
    """
    import runpy, sys
    class _Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers", "alhubert"):
                raise ModuleNotFoundError(f"{name} is blocked in this test", name=name)
            return None
    sys.meta_path.insert(0, _Blocked())
    sys.argv = [sys.argv[1], *sys.argv[2:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
    assert not [name for name in sys.modules if name.split(".")[0] in ("torch", "transformers")]
    """
)


def run_example(*args, cwd):
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, str(EXAMPLE), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_example_runs_with_onnxruntime_only(model_dir, ctc_export, tmp_path):
    waveform = padded_batch((12000,), seed=5)[0][0] * 0.1
    soundfile.write(tmp_path / "speech.wav", waveform, 16000, subtype="FLOAT")
    result = run_example(
        model_dir, tmp_path / "speech.wav", "--layer", "3", "--quantized", "--output", "f.npy", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    quantized = np.load(tmp_path / "f.npy")
    result = run_example(model_dir, tmp_path / "speech.wav", "--layer", "3", "--output", "f.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = (
        torch_outputs(AlHubertModel.from_pretrained(model_dir).eval(), waveform[None]).hidden_states[3][0].numpy()
    )
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), expected, atol=1e-4, rtol=0)
    assert quantized.shape == expected.shape and not np.array_equal(quantized, expected)

    model_path, export_dir, tokenizer = ctc_export
    result = run_example(export_dir, tmp_path / "speech.wav", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with torch.no_grad():
        logits = AlHubertForCTC.from_pretrained(model_path).eval()(torch.from_numpy(waveform[None])).logits
    assert result.stdout.strip() == tokenizer.decode(logits.argmax(-1)[0].tolist())

    soundfile.write(tmp_path / "speech-22k.wav", waveform, 22050)
    result = run_example(model_dir, tmp_path / "speech-22k.wav", cwd=tmp_path)
    assert result.returncode != 0 and "sampled at 22050 Hz but the model needs 16000 Hz" in result.stderr


def test_staging_uploads_the_onnx_folder_and_the_card_shows_how_to_use_it(model_dir, tmp_path):
    staged = stage_for_upload(model_dir, tmp_path / "staged", repo_id="someone/tiny")
    assert "onnx" in staged
    assert sorted(path.name for path in (tmp_path / "staged" / "onnx").iterdir()) == [
        "model.onnx",
        "model_quantized.onnx",
    ]
    card = (tmp_path / "staged" / "README.md").read_text()
    assert "## ONNX" in card and "onnx/model_quantized.onnx" in card


def test_a_failed_export_leaves_nothing_behind(model_dir, tmp_path, monkeypatch):
    def fail(model, output_name, all_hidden_states, opset, path):
        path.write_bytes(b"half a model")
        raise ValueError("export failed half-way")

    monkeypatch.setattr(onnx_export, "_export_graph", fail)
    with pytest.raises(ValueError, match="half-way"):
        export_onnx(model_dir, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def _not_a_hubert(tmp_path, model_dir):
    Wav2Vec2Config().save_pretrained(tmp_path / "wav2vec2")
    return [str(tmp_path / "wav2vec2"), str(tmp_path / "out")]


def _output_exists(tmp_path, model_dir):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    return [str(model_dir), str(tmp_path / "out")]


@pytest.mark.parametrize(
    "make_args, message",
    [
        (_not_a_hubert, "not an ALHuBERT or HuBERT model"),
        (lambda tmp_path, model_dir: [str(tmp_path), str(tmp_path / "out")], "has no config.json"),
        (_output_exists, "already exists and is not empty; pass --overwrite"),
        (lambda tmp_path, model_dir: [str(model_dir), str(tmp_path / "out"), "--opset", "11"], "Unsupported opset 11"),
        (
            lambda tmp_path, model_dir: [str(model_dir), str(tmp_path / "out"), "--quantize", "int4"],
            "Unsupported quantization",
        ),
        (lambda tmp_path, model_dir: [str(tmp_path / "no-model"), str(tmp_path / "out")], "Cannot load the model"),
    ],
    ids=[
        "not-alhubert",
        "no-config",
        "output-exists",
        "unsupported-opset",
        "unsupported-quantization",
        "missing-model",
    ],
)
def test_export_errors_are_one_line(model_dir, tmp_path, make_args, message):
    args = make_args(tmp_path, model_dir)
    result = runner.invoke(app, ["export", "onnx", *args])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "onnx").exists()
