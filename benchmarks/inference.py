#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Inference speed, memory and size of ALHuBERT small against HuBERT Base and DistilHuBERT shapes.

Models (random weights, eval mode, `torch.inference_mode`):

- `alhubert-small`: `AlHubertModel` with the "small" preset (2 distinct layers applied 12 times), as shipped;
- `alhubert-small-plain`: the same weights run with HuBERT's own arithmetic (`set_fast_cpu_path(False)`), i.e. the code
  before the speed work, so that its gain is measured in the same run;
- `hubert-base`: `transformers.HubertModel` with the HuBERT Base shape (12 layers: the same compute);
- `distilhubert`: a `HubertModel` with 2 layers (the DistilHuBERT shape, the lower bound of compute);
- `onnx-fp32`, `onnx-int8`: `alhubert-small`'s weights exported with `alhubert.inference.onnx_export.export_onnx`
  (`onnx/model.onnx` and `onnx/model_quantized.onnx`) and run by ONNX Runtime on the CPU with as many threads as
  torch (needs the `onnx` extra; CPU and float32 only). Their "x alhubert-small" column is the speed-up against the
  PyTorch model they were exported from, measured in the same rounds.

For every batch size and duration the models run in turn (A, B, C, D, A, B, ...) and the median of `--repeats`
forward passes is reported, so that a busy machine slows them alike; the speed-up against HuBERT Base is the median
of the per-round ratios. A square float32 matmul is timed in the same rounds: the achieved GFLOP/s of each model is
shown against it. Peak memory is what one forward pass adds to the memory of the loaded model at its peak (CPU:
resident memory of the process, Linux only; CUDA: allocated bytes). Outputs: a Markdown table, a JSON file and a PNG
plot in `--output_dir`.

    python benchmarks/inference.py                                   # CPU, float32, batch 1 and 4, 2/10/30 s
    python benchmarks/inference.py --batch_sizes 4 --durations_s 10 --repeats 9 --measure_memory false
    python benchmarks/inference.py --device cuda --dtype bfloat16 --output_dir $OUT
    python benchmarks/inference.py --models alhubert-small onnx-fp32 onnx-int8 --durations_s 10 --batch_sizes 1 4
"""

import contextlib
import ctypes
import gc
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import torch
from tqdm.auto import tqdm
from transformers import HfArgumentParser, HubertConfig, HubertModel
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import logging as transformers_logging

from alhubert import AlHubertConfig, AlHubertModel


logger = logging.getLogger(__name__)

MODEL_NAMES = ("alhubert-small", "alhubert-small-plain", "hubert-base", "distilhubert")
ONNX_MODEL_NAMES = ("onnx-fp32", "onnx-int8")
SAMPLING_RATE = 16000


@dataclass
class InferenceBenchmarkArguments:
    models: list[str] = field(
        default_factory=lambda: list(MODEL_NAMES), metadata={"help": f"Any of {MODEL_NAMES + ONNX_MODEL_NAMES}."}
    )
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4], metadata={"help": "Batch sizes to measure."})
    durations_s: list[float] = field(
        default_factory=lambda: [2.0, 10.0, 30.0], metadata={"help": "Seconds of audio per item."}
    )
    repeats: int = field(default=3, metadata={"help": "Timed forward passes per model and shape (after one warm-up)."})
    device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda'."})
    dtype: str = field(
        default="float32",
        metadata={"help": "'float32', or 'bfloat16'/'float16' for autocast (accuracy against float32 is reported)."},
    )
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)."})
    compile: bool = field(default=False, metadata={"help": "Wrap each model in torch.compile (compiled in warm-up)."})
    measure_memory: bool = field(default=True, metadata={"help": "Measure the peak memory of one forward pass."})
    matmul_size: int = field(default=2048, metadata={"help": "Side of the square reference matmul."})
    output_dir: str = field(default="benchmarks/results", metadata={"help": "Where the .md, .json and .png go."})
    seed: int = field(default=0, metadata={"help": "Seed of the random weights and inputs."})


def build_model(name: str) -> torch.nn.Module:
    """A randomly initialised model of the named shape, in eval mode."""
    if name in ("alhubert-small", "alhubert-small-plain"):
        model = AlHubertModel(AlHubertConfig.from_preset("small"))
        model.set_fast_cpu_path(name == "alhubert-small")
    elif name == "hubert-base":
        model = HubertModel(HubertConfig())
    elif name == "distilhubert":
        model = HubertModel(HubertConfig(num_hidden_layers=2))
    else:
        raise ValueError(f"Unknown model {name!r}; choose from {MODEL_NAMES}.")
    return model.eval()


class OnnxRuntimeModel:
    """An exported model run by ONNX Runtime, called like the PyTorch models here (a batch of waveforms in, an
    output with `last_hidden_state` out)."""

    def __init__(self, path, config, parameters: int, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path, self.config, self.parameters = path, config, parameters

    def __call__(self, input_values: torch.Tensor) -> BaseModelOutput:
        waveforms = input_values.numpy()
        mask = torch.ones(waveforms.shape, dtype=torch.long).numpy()
        (output,) = self.session.run(["last_hidden_state"], {"input_values": waveforms, "attention_mask": mask})
        return BaseModelOutput(last_hidden_state=torch.from_numpy(output))

    def num_parameters(self) -> int:
        return self.parameters

    def file_megabytes(self) -> float:
        return os.path.getsize(self.path) / 1e6


def build_onnx_models(source: AlHubertModel, names: list[str], workdir: str, threads: int) -> dict:
    """Export `source` (float32 and int8) and open the requested ONNX Runtime models."""
    from alhubert.inference.onnx_export import export_onnx

    source.save_pretrained(os.path.join(workdir, "source"))
    files = export_onnx(os.path.join(workdir, "source"), os.path.join(workdir, "onnx"), quantize="int8")
    return {
        name: OnnxRuntimeModel(files[name.removeprefix("onnx-")], source.config, source.num_parameters(), threads)
        for name in names
    }


def forward_flops(config, batch_size: int, samples: int) -> float:
    """FLOPs (a multiply-add counts 2) of one forward pass: convolutions, projections and attention."""
    flops, length, in_channels = 0.0, samples, 1
    for channels, kernel, stride in zip(config.conv_dim, config.conv_kernel, config.conv_stride):
        length = (length - kernel) // stride + 1
        flops += 2 * length * channels * in_channels * kernel
        in_channels = channels
    hidden = config.hidden_size
    flops += 2 * length * in_channels * hidden  # feature projection
    flops += 2 * length * hidden * (hidden // config.num_conv_pos_embedding_groups) * config.num_conv_pos_embeddings
    projections = 2 * length * (4 * hidden * hidden + 2 * hidden * config.intermediate_size)
    per_layer = projections + 4 * length * length * hidden  # + attention scores and weighted values
    return batch_size * (flops + config.num_hidden_layers * per_layer)


def safetensors_megabytes(model) -> float:
    """Size of the `model.safetensors` that `save_pretrained` writes."""
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        return os.path.getsize(os.path.join(directory, "model.safetensors")) / 1e6


def autocast(args: InferenceBenchmarkArguments):
    if args.dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=args.device, dtype=getattr(torch, args.dtype))


def synchronize(device: str):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(function, device: str) -> float:
    """Wall-clock seconds of `function()`."""
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def matmul_seconds(size: int, device: str, dtype: torch.dtype) -> float:
    """Seconds of one `size` x `size` matmul (the reference for the achieved GFLOP/s)."""
    left = torch.randn(size, size, device=device, dtype=dtype)
    right = torch.randn(size, size, device=device, dtype=dtype)
    left @ right
    return timed(lambda: left @ right, device)


def _process_memory_megabytes(key: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    raise OSError(f"{key} not in /proc/self/status")


def peak_memory_megabytes(model, inputs, args: InferenceBenchmarkArguments) -> float | None:
    """Memory that one forward pass adds at its peak: allocated bytes on CUDA; on CPU (Linux), the peak resident
    memory of the process above its resident memory before the pass (high-water mark reset, freed heap returned)."""
    if args.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with torch.inference_mode(), autocast(args):
            model(inputs)
        return (torch.cuda.max_memory_allocated() - before) / 1e6
    try:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # reset the high-water mark VmHWM to the current resident memory
        before = _process_memory_megabytes("VmRSS")
    except OSError:
        logger.warning("Peak memory needs Linux's /proc/self (and glibc); not measured.")
        return None
    with torch.inference_mode(), autocast(args):
        model(inputs)
    return _process_memory_megabytes("VmHWM") - before


def output_difference(model, reference_model, inputs, args: InferenceBenchmarkArguments) -> dict:
    """Largest absolute difference and mean cosine similarity of `last_hidden_state` to `reference_model` in fp32."""
    with torch.inference_mode():
        reference = reference_model(inputs).last_hidden_state.float()
        with autocast(args):
            output = model(inputs).last_hidden_state.float()
    cosine = torch.nn.functional.cosine_similarity(output, reference, dim=-1).mean()
    return {"max_abs_diff": (output - reference).abs().max().item(), "mean_cosine": cosine.item()}


def measure_shape(models, batch_size, duration_s, args, generator) -> list[dict]:
    """Interleaved timings of all models (and the reference matmul) on one input shape."""
    samples = int(duration_s * SAMPLING_RATE)
    inputs = torch.randn(batch_size, samples, generator=generator).to(args.device)
    dtype = torch.float32 if args.dtype == "float32" else getattr(torch, args.dtype)

    def run(model):
        with torch.inference_mode(), autocast(args):
            return model(inputs)

    seconds = {name: [] for name in models}
    matmul = []
    for round_index in range(args.repeats + 1):  # round 0 is the warm-up (and compilation)
        for name, model in models.items():
            elapsed = timed(lambda: run(model), args.device)
            if round_index:
                seconds[name].append(elapsed)
        elapsed = matmul_seconds(args.matmul_size, args.device, dtype)
        if round_index:
            matmul.append(elapsed)
    matmul_gflops = 2 * args.matmul_size**3 / statistics.median(matmul) / 1e9

    rows = []
    for name, model in models.items():
        median = statistics.median(seconds[name])
        flops = forward_flops(model.config, batch_size, samples)
        row = {
            "model": name,
            "batch_size": batch_size,
            "duration_s": duration_s,
            "seconds": seconds[name],
            "median_s": median,
            "audio_s_per_s": batch_size * duration_s / median,
            "gflop": flops / 1e9,
            "gflops": flops / median / 1e9,
            "matmul_gflops": matmul_gflops,
        }
        for reference in ("hubert-base", "alhubert-small"):
            if reference in seconds:
                key = f"speedup_vs_{reference.replace('-', '_')}"
                row[key] = statistics.median(base / own for base, own in zip(seconds[reference], seconds[name]))
        if args.measure_memory and name not in ONNX_MODEL_NAMES:
            # not for ONNX Runtime: its memory arena keeps the memory of the warm-up run, so the increase is ~0
            row["peak_memory_mb"] = peak_memory_megabytes(model, inputs, args)
        rows.append(row)
    return rows


def machine_description(args) -> dict:
    description = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
    }
    if args.device == "cuda":
        description["gpu"] = torch.cuda.get_device_name()
    return description


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()


def markdown_table(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']['processor']}, {results['machine']['torch_threads']} torch threads, "
        f"torch {results['machine']['torch']}, device {results['arguments']['device']}, "
        f"{results['arguments']['dtype']}, {results['machine']['date']}, load average at start "
        f"{results['machine']['load_average'][0]:.1f}. Reference matmul: "
        f"{statistics.median(r['matmul_gflops'] for r in results['rows']):.0f} GFLOP/s (median over shapes).",
        "",
        "| model | parameters | weights file (MB; .onnx for onnx-*) |",
        "|---|---:|---:|",
    ]
    for name, info in results["models"].items():
        lines.append(f"| {name} | {info['parameters']:,} | {info['safetensors_mb']:.1f} |")
    lines += [
        "",
        "| model | batch | seconds of audio | median time (s) | audio s / s | x HuBERT Base | x alhubert-small | GFLOP | "
        "GFLOP/s | % of matmul | forward peak memory (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        memory = f"{row['peak_memory_mb']:.0f}" if row.get("peak_memory_mb") is not None else "-"
        speedup = f"{row['speedup_vs_hubert_base']:.2f}" if "speedup_vs_hubert_base" in row else "-"
        own_speedup = f"{row['speedup_vs_alhubert_small']:.2f}" if "speedup_vs_alhubert_small" in row else "-"
        lines.append(
            f"| {row['model']} | {row['batch_size']} | {row['duration_s']:g} | {row['median_s']:.3f} | "
            f"{row['audio_s_per_s']:.1f} | {speedup} | {own_speedup} | {row['gflop']:.0f} | {row['gflops']:.0f} | "
            f"{100 * row['gflops'] / row['matmul_gflops']:.0f} | {memory} |"
        )
    if results.get("onnx_vs_pytorch_fp32"):
        lines += ["", "ONNX Runtime against the PyTorch float32 model they were exported from (batch 1, 10 s):", ""]
        lines += ["| model | max abs diff | mean cosine |", "|---|---:|---:|"]
        for name, accuracy in results["onnx_vs_pytorch_fp32"].items():
            lines.append(f"| {name} | {accuracy['max_abs_diff']:.3g} | {accuracy['mean_cosine']:.6f} |")
    if results.get("accuracy"):
        lines += ["", f"Accuracy of {results['arguments']['dtype']} autocast against float32 (batch 1, 10 s):", ""]
        lines += ["| model | max abs diff | mean cosine |", "|---|---:|---:|"]
        for name, accuracy in results["accuracy"].items():
            lines.append(f"| {name} | {accuracy['max_abs_diff']:.3g} | {accuracy['mean_cosine']:.6f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str):
    """Throughput (top) and speed-up against HuBERT Base (bottom) per batch size, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch_sizes = sorted({row["batch_size"] for row in results["rows"]})
    durations = sorted({row["duration_s"] for row in results["rows"]})
    figure, axes = plt.subplots(2, len(batch_sizes), figsize=(5 * len(batch_sizes), 7), squeeze=False)
    setting = f"{results['arguments']['device']} {results['arguments']['dtype']}"
    for column, batch_size in enumerate(batch_sizes):
        for name in results["models"]:
            rows = [r for r in results["rows"] if r["model"] == name and r["batch_size"] == batch_size]
            positions = [durations.index(r["duration_s"]) for r in rows]
            axes[0][column].plot(positions, [r["audio_s_per_s"] for r in rows], marker="o", label=name)
            if rows and "speedup_vs_hubert_base" in rows[0]:
                axes[1][column].plot(positions, [r["speedup_vs_hubert_base"] for r in rows], marker="o", label=name)
        axes[0][column].set_title(f"batch {batch_size}, {setting}")
        axes[0][column].set_ylabel("audio seconds per wall-clock second")
        axes[1][column].set_ylabel("x hubert-base (median of paired rounds)")
        axes[1][column].axhline(1.0, color="grey", linewidth=0.8)
        for axis in axes[:, column]:
            axis.set_xticks(range(len(durations)), [f"{d:g}" for d in durations])
            axis.set_xlabel("seconds of audio per item")
            axis.set_ylim(bottom=0)
            axis.grid(alpha=0.3)
            axis.legend(fontsize="small")
    figure.suptitle(
        f"Inference, {results['machine']['processor']}, {results['machine']['torch_threads']} threads, "
        f"{results['machine']['date']}",
        fontsize="medium",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    (args,) = HfArgumentParser(InferenceBenchmarkArguments).parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    transformers_logging.disable_progress_bar()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was given but torch sees no CUDA GPU; use --device cpu.")
    if args.dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"--dtype must be float32, bfloat16 or float16, got {args.dtype!r}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    onnx_names = [name for name in args.models if name in ONNX_MODEL_NAMES]
    if onnx_names and (args.device != "cpu" or args.dtype != "float32" or args.compile):
        raise ValueError(f"{onnx_names} run with ONNX Runtime on the CPU in float32: drop them or --device/--dtype.")
    torch.manual_seed(args.seed)
    models = {name: build_model(name).to(args.device) for name in args.models if name not in ONNX_MODEL_NAMES}
    if "alhubert-small" in models and "alhubert-small-plain" in models:
        models["alhubert-small-plain"].load_state_dict(models["alhubert-small"].state_dict())
    onnx_workdir = tempfile.TemporaryDirectory()
    if onnx_names:
        source = models["alhubert-small"] if "alhubert-small" in models else build_model("alhubert-small")
        models.update(build_onnx_models(source, onnx_names, onnx_workdir.name, torch.get_num_threads()))
    results = {"arguments": asdict(args), "machine": machine_description(args), "models": {}, "rows": []}
    for name, model in models.items():
        results["models"][name] = {
            "parameters": model.num_parameters(),
            "safetensors_mb": model.file_megabytes() if name in ONNX_MODEL_NAMES else safetensors_megabytes(model),
        }

    generator = torch.Generator().manual_seed(args.seed)
    accuracy_input = torch.randn(1, 10 * SAMPLING_RATE, generator=generator).to(args.device)
    if "alhubert-small" in models and "alhubert-small-plain" in models:
        plain_args = InferenceBenchmarkArguments(dtype="float32", device=args.device)
        difference = output_difference(
            models["alhubert-small"], models["alhubert-small-plain"], accuracy_input, plain_args
        )
        results["alhubert_small_vs_plain_fp32"] = difference
        logger.info("alhubert-small against its plain float32 arithmetic: %s", difference)
    if onnx_names and "alhubert-small" in models:
        results["onnx_vs_pytorch_fp32"] = {
            name: output_difference(models[name], models["alhubert-small"], accuracy_input, args) for name in onnx_names
        }
    if args.dtype != "float32":
        results["accuracy"] = {
            name: output_difference(model, model, accuracy_input, args) for name, model in models.items()
        }
    if args.compile:
        models = {name: torch.compile(model) for name, model in models.items()}

    shapes = [(b, d) for d in args.durations_s for b in args.batch_sizes]
    for batch_size, duration_s in tqdm(shapes, desc="shapes"):
        rows = measure_shape(models, batch_size, duration_s, args, generator)
        results["rows"].extend(rows)
        for row in rows:
            logger.info(
                "%s batch %d x %g s: %.3f s, %.1f audio s/s, x%.2f HuBERT Base",
                row["model"], batch_size, duration_s, row["median_s"], row["audio_s_per_s"],
                row.get("speedup_vs_hubert_base", float("nan")),
            )

    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.join(args.output_dir, f"inference-{args.device}-{args.dtype}")
    with open(f"{stem}.json", "w") as file:
        json.dump(results, file, indent=2)
    with open(f"{stem}.md", "w") as file:
        file.write(markdown_table(results))
    plot(results, f"{stem}.png")
    print(markdown_table(results))
    logger.info("Wrote %s.{json,md,png}", stem)
    onnx_workdir.cleanup()


if __name__ == "__main__":
    main()
