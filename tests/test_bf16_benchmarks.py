"""Smoke runs of the speed benchmark scripts on tiny models (benchmarks/inference.py, bf16_fidelity.py,
host_overhead.py, positional_conv.py, profile_inference.py) and a check of every command of benchmarks/gpu.sh:
they must not fail on a typo before a long or lent-GPU run. No timings are checked."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_config_kwargs
from transformers import HfArgumentParser

from alhubert import AlHubertConfig, AlHubertModel


REPO = Path(__file__).resolve().parents[1]
MIN_COSINE = 1 - (8 * 2.0**-8) ** 2 / 2  # the 8-roundoff bound of tests/test_bf16_native.py


@pytest.fixture
def benchmarks(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return lambda name: importlib.import_module(name)


def test_inference_benchmark_rows_for_every_precision(benchmarks, tmp_path):
    inference = benchmarks("inference")
    models = ["alhubert-small-bf16", "alhubert-small-autocast", "alhubert-small", "hubert-base-bf16", "hubert-base"]
    results = inference.main(
        [
            "--tiny",
            "--models",
            *models,
            "--batch_sizes",
            "2",
            "--durations_s",
            "0.5",
            "--repeats",
            "1",
            "--matmul_size",
            "32",
            "--plot",
            "false",
            "--threads",
            "1",
            "--output_dir",
            str(tmp_path),
            "--output_name",
            "smoke",
        ]
    )
    rows = {row["model"]: row for row in results["rows"]}
    assert list(rows) == models and not results["failed"]
    assert rows["alhubert-small-bf16"]["precision"] == "bfloat16"
    assert rows["alhubert-small-autocast"]["precision"] == "autocast"
    for name, row in rows.items():
        assert row["bf16_matmul_gflops"] > 0 and row["speedup_vs_hubert_base"] > 0
        assert row["mean_cosine"] >= MIN_COSINE, name
        assert (row["mean_cosine"] == 1.0) == (row["precision"] == "float32"), name
    sizes = {name: info["safetensors_mb"] for name, info in results["models"].items()}
    assert sizes["alhubert-small-bf16"] < sizes["alhubert-small"]
    table = (tmp_path / "smoke.md").read_text()
    assert "% of bf16 matmul" in table and "x hubert-base |" in table
    assert "| alhubert-small-bf16 | bfloat16 | 2 |" in table
    assert json.loads((tmp_path / "smoke.json").read_text())["rows"][0]["model"] == "alhubert-small-bf16"


def test_inference_benchmark_names_and_failures(benchmarks, monkeypatch):
    inference = benchmarks("inference")
    args = inference.InferenceBenchmarkArguments()
    assert inference.Variant.parse(
        "hubert-base-bf16-graphs", inference.InferenceBenchmarkArguments(device="cuda")
    ) == inference.Variant("hubert-base", "bfloat16", "graphs")
    assert inference.Variant.parse("alhubert-small-autocast-compiled", args) == inference.Variant(
        "alhubert-small", "autocast", "compiled"
    )
    with pytest.raises(ValueError, match="Unknown model 'hubert-large'"):
        inference.Variant.parse("hubert-large", args)
    with pytest.raises(ValueError, match="CUDA graphs need --device cuda"):
        inference.Variant.parse("alhubert-small-bf16-graphs", args)
    rows = {"hubert-base-bf16": None, "hubert-base": None}
    assert inference.reference_row(rows, args) == "hubert-base"
    assert (
        inference.reference_row(rows, inference.InferenceBenchmarkArguments(reference_model="hubert-base-bf16"))
        == "hubert-base-bf16"
    )
    # a row that fails (say, a compiler error) is dropped with its error; the others are still measured
    args = inference.InferenceBenchmarkArguments(
        models=["alhubert-small", "hubert-base"], tiny=True, repeats=1, matmul_size=16, measure_memory=False
    )
    entries, bases = inference.build_entries(args, "unused")
    monkeypatch.setattr(entries["hubert-base"], "model", lambda inputs: 1 / 0)
    failed = {}
    rows = inference.measure_shape(entries, bases, 1, 0.5, args, torch.Generator().manual_seed(0), failed)
    assert [row["model"] for row in rows] == ["alhubert-small"] and "ZeroDivisionError" in failed["hubert-base"]


def test_bf16_fidelity_on_the_demo_corpus(benchmarks, tmp_path):
    torch.manual_seed(0)
    config = AlHubertConfig(**tiny_config_kwargs())
    AlHubertModel(config).save_pretrained(tmp_path / "encoder")
    ctc_dir = tmp_path / "ctc"
    from test_pipelines import save_ctc_model  # a CTC folder with its processor

    ctc_dir.mkdir()
    save_ctc_model(ctc_dir)
    results = benchmarks("bf16_fidelity").main(
        [
            "--model_name_or_path",
            str(tmp_path / "encoder"),
            "--ctc_model",
            str(ctc_dir),
            "--max_utterances",
            "3",
            "--threads",
            "1",
        ]
    )
    encoder = results["encoder"]
    assert encoder["utterances"] == 3 and encoder["frames"] > 0
    for setting in ("bf16-native", "bf16-autocast"):
        cosines = encoder["mean_cosine_per_hidden_state"][setting]
        assert len(cosines) == config.num_hidden_layers + 1 and min(cosines) >= MIN_COSINE
    assert encoder["bf16_native_meets_0.999"] is True
    ctc = results["ctc"]
    assert set(ctc["cer"]) == {"float32", "bf16-native", "bf16-autocast"}
    assert ctc["identical_transcripts_to_float32"]["bf16-native"] == 3  # the head always predicts "B"


def test_host_overhead_benchmark(benchmarks, capsys):
    seconds = benchmarks("host_overhead").main(["--rounds", "2", "--calls", "1"])
    assert list(seconds) == ["alhubert-small", "alhubert-small-plain", "hubert-base"]
    assert all(len(times) == 2 and min(times) > 0 for times in seconds.values())
    table = capsys.readouterr().out
    assert "| hubert-base |" in table and table.count("| alhubert-small") == 2 and "load average at end" in table
    models = benchmarks("host_overhead").build_models("cpu", torch.float32)
    assert models["alhubert-small"].config.num_hidden_layers == models["hubert-base"].config.num_hidden_layers == 12
    assert len(models["alhubert-small"].encoder.layers) == 2 and len(models["hubert-base"].encoder.layers) == 12


def test_positional_conv_benchmark_formulations_agree(benchmarks, capsys):
    rows = benchmarks("positional_conv").main(
        ["--hidden_size", "64", "--frames", "40", "--batch_sizes", "2", "--repeats", "1", "--threads", "1"]
    )
    variants = {row["variant"]: row for row in rows}
    assert list(variants) == ["conv-fp32", "conv-bf16", "conv-bf16-cudnn-benchmark", "matmul-bf16"]
    assert variants["conv-fp32"]["cosine_to_fp32"] > 1 - 1e-6
    for name in ("conv-bf16", "matmul-bf16"):
        assert variants[name]["cosine_to_fp32"] >= MIN_COSINE and variants[name]["ms"] > 0, name
    assert not torch.backends.cudnn.benchmark  # restored
    assert "| matmul-bf16 | 2 | 40 |" in capsys.readouterr().out


def test_profile_inference_on_cpu(benchmarks, monkeypatch, capsys):
    inference, profile = benchmarks("inference"), benchmarks("profile_inference")
    monkeypatch.setattr(profile, "build_model", lambda name: inference.build_model(name, tiny=True))
    monkeypatch.setattr(sys, "argv", ["profile_inference.py", "--batch_size", "1", "--duration_s", "0.1"])
    profile.main()
    out = capsys.readouterr().out
    assert "matrix products" in out and "oneDNN / cuDNN convolutions" in out and "GFLOP/s" in out


# Every Python command benchmarks/gpu.sh would run, recorded by a stand-in interpreter that claims a GPU, then parsed
# by that script's own argument parser: a misspelt flag or model name fails here, not on a lent GPU.
RECORDER = """import json, os, sys
if sys.argv[1] != "-c":
    with open(os.environ["GPU_SH_RECORD"], "a") as file:
        file.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def test_every_gpu_sh_command_parses(benchmarks, tmp_path):
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\n{RECORDER}")
    python.chmod(0o755)
    record = tmp_path / "calls.jsonl"
    env = {**os.environ, "PYTHON": str(python), "GPU_SH_RECORD": str(record)}
    finished = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu.sh"), str(tmp_path / "out")], env=env, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    scripts = [Path(call[0]).name for call in calls]
    assert scripts.count("inference.py") == 5
    assert {"host_overhead.py", "profile_inference.py", "positional_conv.py", "distill_step.py"} <= set(scripts)
    inference, profile = benchmarks("inference"), benchmarks("profile_inference")
    parsers = {
        "inference.py": lambda: HfArgumentParser(inference.InferenceBenchmarkArguments),
        "profile_inference.py": lambda: HfArgumentParser(profile.ProfileArguments),
        "host_overhead.py": lambda: benchmarks("host_overhead").build_parser(),
        "distill_step.py": lambda: benchmarks("distill_step").build_parser(),
        "positional_conv.py": lambda: benchmarks("positional_conv").build_parser(),
    }
    for call in calls:
        parser = parsers[Path(call[0]).name]()
        if isinstance(parser, HfArgumentParser):
            (args,) = parser.parse_args_into_dataclasses(call[1:])
        else:
            args = parser.parse_args(call[1:])
        assert args.device == "cuda" if hasattr(args, "device") else args.devices == ["cuda"], call
        for name in getattr(args, "models", []) if Path(call[0]).name == "inference.py" else []:
            inference.Variant.parse(name, args)  # raises on an unknown model or suffix
        if Path(call[0]).name == "profile_inference.py":
            assert inference.Variant.parse(args.model, inference.InferenceBenchmarkArguments(device="cuda"))
