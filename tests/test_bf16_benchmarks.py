"""Smoke runs of the bf16 benchmark scripts on tiny models (benchmarks/inference.py, benchmarks/bf16_fidelity.py):
they must not fail on a typo before a long or lent-GPU run. No timings are checked."""

import importlib
import json
from pathlib import Path

import pytest
import torch
from helpers import tiny_config_kwargs

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
