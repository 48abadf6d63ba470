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

Each PyTorch model name takes optional suffixes, precision first, then the runner:

- `-bf16`: native bfloat16, the weights stored in bf16 (`model.to(torch.bfloat16)`) and bf16 audio in, no autocast
  (`alhubert-small-bf16`: ALHuBERT's native bf16 path); `-autocast`: float32 weights under bf16 autocast;
  no suffix: float32, or autocast in `--dtype` when that is not float32;
- `-compiled`: `torch.compile(model, mode=--compile_mode, dynamic=False)` (compiled in the warm-up round, once per
  shape); `-graphs`: CUDA graphs (`torch.cuda.CUDAGraph`, captured once per shape in the warm-up round, then
  replayed; CUDA only).

For example `--models alhubert-small-bf16 hubert-base-autocast hubert-base alhubert-small-bf16-graphs`.

For every batch size and duration the models run in turn (A, B, C, D, A, B, ...) and the median of `--repeats`
forward passes is reported, so that a busy machine slows them alike; the speed-up against HuBERT Base (the float32
`hubert-base` row when present, else the first `hubert-base*` row) is the median of the per-round ratios. Square
float32 and (when a row computes in bf16) bf16 matmuls are timed in the same rounds: each row's achieved GFLOP/s is
shown against the matmul in its own compute dtype ("% of matmul") and against the bf16 one ("% of bf16 matmul"). With
`--check_outputs` (default) each row's `last_hidden_state` is compared, at every shape, with the float32 eager model of
the same weights (mean cosine over frames). Peak memory is what one forward pass adds to the memory of the loaded
model at its peak (CPU: resident memory of the process, Linux only; CUDA: allocated bytes; not for compiled or
graph rows). A model that fails (for example a compilation error) is dropped with its error in the JSON; the others
go on. Outputs: a Markdown table, a JSON file and (with matplotlib) a PNG plot in `--output_dir`.

    python benchmarks/inference.py                                   # CPU, float32, batch 1 and 4, 2/10/30 s
    python benchmarks/inference.py --batch_sizes 4 --durations_s 10 --repeats 9 --measure_memory false
    python benchmarks/inference.py --models alhubert-small-bf16 hubert-base-autocast hubert-base --durations_s 10
    python benchmarks/inference.py --device cuda --dtype bfloat16 --output_dir $OUT
    python benchmarks/inference.py --models alhubert-small onnx-fp32 onnx-int8 --durations_s 10 --batch_sizes 1 4
"""

import contextlib
import copy
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
PRECISION_SUFFIXES = {"-bf16": "bfloat16", "-autocast": "autocast"}
RUNNER_SUFFIXES = {"-compiled": "compiled", "-graphs": "graphs"}
SAMPLING_RATE = 16000


@dataclass
class InferenceBenchmarkArguments:
    models: list[str] = field(
        default_factory=lambda: list(MODEL_NAMES),
        metadata={
            "help": f"Any of {MODEL_NAMES + ONNX_MODEL_NAMES}; PyTorch models with optional suffixes "
            f"{tuple(PRECISION_SUFFIXES)} then {tuple(RUNNER_SUFFIXES)} (see the module docstring)."
        },
    )
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4], metadata={"help": "Batch sizes to measure."})
    durations_s: list[float] = field(
        default_factory=lambda: [2.0, 10.0, 30.0], metadata={"help": "Seconds of audio per item."}
    )
    repeats: int = field(default=3, metadata={"help": "Timed forward passes per model and shape (after one warm-up)."})
    device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda'."})
    dtype: str = field(
        default="float32",
        metadata={"help": "'float32', or 'bfloat16'/'float16': autocast for the models without a precision suffix."},
    )
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)."})
    compile: bool = field(default=False, metadata={"help": "Wrap each model in torch.compile (compiled in warm-up)."})
    compile_mode: str | None = field(
        default=None, metadata={"help": "torch.compile mode of compiled rows, e.g. 'reduce-overhead' (CUDA graphs)."}
    )
    cudnn_benchmark: bool = field(
        default=False,
        metadata={
            "help": "Let cuDNN time its convolution algorithms for each input shape in the warm-up round and keep the "
            "fastest (torch.backends.cudnn.benchmark); default: cuDNN's heuristic choice."
        },
    )
    measure_memory: bool = field(default=True, metadata={"help": "Measure the peak memory of one forward pass."})
    check_outputs: bool = field(
        default=True, metadata={"help": "Compare every row with the float32 eager model at every shape."}
    )
    matmul_size: int = field(default=2048, metadata={"help": "Side of the square reference matmul."})
    reference_model: str | None = field(
        default=None, metadata={"help": "Row of the 'x HuBERT Base' column (default: hubert-base, float32)."}
    )
    plot: bool = field(default=True, metadata={"help": "Also draw the PNG plot (needs matplotlib)."})
    tiny: bool = field(default=False, metadata={"help": "Tiny configurations (a smoke test of this script)."})
    output_dir: str = field(default="benchmarks/results", metadata={"help": "Where the .md, .json and .png go."})
    output_name: str | None = field(
        default=None, metadata={"help": "File name stem of the outputs (default: inference-<device>-<dtype>)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the random weights and inputs."})


@dataclass(frozen=True)
class Variant:
    """How one row runs: `base` model, `precision` (float32, bfloat16 = native bf16 weights, autocast) and
    `runner` (eager, compiled, graphs)."""

    base: str
    precision: str
    runner: str

    @classmethod
    def parse(cls, name: str, args: InferenceBenchmarkArguments) -> "Variant":
        if name in ONNX_MODEL_NAMES:
            return cls(name, "float32", "onnx")
        base, precision, runner = name, "float32", "eager"
        for suffix, value in RUNNER_SUFFIXES.items():
            if base.endswith(suffix):
                base, runner = base.removesuffix(suffix), value
        for suffix, value in PRECISION_SUFFIXES.items():
            if base.endswith(suffix):
                base, precision = base.removesuffix(suffix), value
        if base not in MODEL_NAMES:
            raise ValueError(
                f"Unknown model {name!r}; choose from {MODEL_NAMES + ONNX_MODEL_NAMES}, optionally followed by "
                f"{' or '.join(PRECISION_SUFFIXES)} and then {' or '.join(RUNNER_SUFFIXES)}."
            )
        if precision == "float32" and args.dtype != "float32":
            precision = "autocast"
        if runner == "eager" and args.compile:
            runner = "compiled"
        if runner == "graphs" and args.device != "cuda":
            raise ValueError(f"{name}: CUDA graphs need --device cuda.")
        return cls(base, precision, runner)

    def weights_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.precision == "bfloat16" else torch.float32

    def compute_dtype(self, args: InferenceBenchmarkArguments) -> torch.dtype:
        if self.precision == "autocast":
            return torch.bfloat16 if args.dtype == "float32" else getattr(torch, args.dtype)
        return self.weights_dtype()

    def context(self, args: InferenceBenchmarkArguments):
        if self.precision != "autocast":
            return contextlib.nullcontext()
        return torch.autocast(device_type=args.device, dtype=self.compute_dtype(args))


def tiny_config(config):
    """`config` shrunk to a few channels and layers (same structure), for a smoke test of this script."""
    config.conv_dim, config.conv_kernel, config.conv_stride = (16, 16, 16), (10, 3, 2), (5, 2, 2)
    config.num_feat_extract_layers = 3
    config.hidden_size, config.intermediate_size, config.num_attention_heads = 32, 64, 4
    config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups = 16, 4
    config.num_hidden_layers = min(config.num_hidden_layers, 3)
    if hasattr(config, "num_hidden_groups"):
        config.num_hidden_groups = 1
    return config


def build_model(name: str, tiny: bool = False) -> torch.nn.Module:
    """A randomly initialised model of the named shape, in eval mode."""
    shape = tiny_config if tiny else (lambda config: config)
    if name in ("alhubert-small", "alhubert-small-plain"):
        model = AlHubertModel(shape(AlHubertConfig.from_preset("small")))
        model.set_fast_cpu_path(name == "alhubert-small")
    elif name == "hubert-base":
        model = HubertModel(shape(HubertConfig()))
    elif name == "distilhubert":
        model = HubertModel(shape(HubertConfig(num_hidden_layers=2)))
    else:
        raise ValueError(f"Unknown model {name!r}; choose from {MODEL_NAMES}.")
    return model.eval()


class CudaGraphModel:
    """Runs `model` through CUDA graphs: captured once per input shape (after two warm-up calls on a side stream,
    as `torch.cuda.graphs` documents), then replayed on a static input buffer. Returns the static output."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.config, self.graphs = model, model.config, {}

    def __call__(self, input_values: torch.Tensor) -> BaseModelOutput:
        key = (tuple(input_values.shape), input_values.dtype)
        if key not in self.graphs:
            static_input = input_values.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self.model(static_input)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_output = self.model(static_input)
            self.graphs[key] = (graph, static_input, static_output)
        graph, static_input, static_output = self.graphs[key]
        static_input.copy_(input_values)
        graph.replay()
        return static_output


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


def peak_memory_megabytes(forward, device: str) -> float | None:
    """Memory that `forward()` adds at its peak: allocated bytes on CUDA; on CPU (Linux), the peak resident memory
    of the process above its resident memory before the pass (high-water mark reset, freed heap returned)."""
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        forward()
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
    forward()
    return _process_memory_megabytes("VmHWM") - before


def compare_outputs(output: torch.Tensor, reference: torch.Tensor) -> dict:
    """Largest absolute difference and mean cosine similarity over frames of two `last_hidden_state`s."""
    output, reference = output.float(), reference.float()
    cosine = torch.nn.functional.cosine_similarity(output, reference, dim=-1).mean()
    return {"max_abs_diff": (output - reference).abs().max().item(), "mean_cosine": cosine.item()}


@dataclass
class Entry:
    """One row of the benchmark: how it runs (`variant`), what it calls and the module behind it."""

    name: str
    variant: Variant
    model: object  # a module, its torch.compile wrapper, a CudaGraphModel or an OnnxRuntimeModel
    module: object

    def __call__(self, inputs: dict, args: InferenceBenchmarkArguments):
        with torch.inference_mode(), self.variant.context(args):
            return self.model(inputs[self.variant.weights_dtype()])


def build_entries(args: InferenceBenchmarkArguments, workdir: str) -> tuple[dict, dict]:
    """The rows to run, and the float32 eager model of every base (the reference of `--check_outputs`)."""
    variants = {name: Variant.parse(name, args) for name in args.models}
    bases = {}
    for base in dict.fromkeys([variant.base for variant in variants.values() if variant.runner != "onnx"]):
        bases[base] = build_model(base, args.tiny).to(args.device)
    if "alhubert-small" in bases and "alhubert-small-plain" in bases:
        bases["alhubert-small-plain"].load_state_dict(bases["alhubert-small"].state_dict())
    modules = {}  # (base, weights dtype) -> module, shared by the rows that differ only in autocast or runner
    entries = {}
    for name, variant in variants.items():
        if variant.runner == "onnx":
            continue
        key = (variant.base, variant.weights_dtype())
        if key not in modules:
            base = bases[variant.base]
            modules[key] = base if key[1] == torch.float32 else copy.deepcopy(base).to(key[1])
        module = modules[key]
        if variant.runner == "compiled":
            model = torch.compile(module, mode=args.compile_mode, dynamic=False)
        elif variant.runner == "graphs":
            model = CudaGraphModel(module)
        else:
            model = module
        entries[name] = Entry(name, variant, model, module)
    onnx_names = [name for name, variant in variants.items() if variant.runner == "onnx"]
    if onnx_names:
        if "alhubert-small" not in bases:
            bases["alhubert-small"] = build_model("alhubert-small", args.tiny)
        onnx_models = build_onnx_models(bases["alhubert-small"], onnx_names, workdir, torch.get_num_threads())
        for name in onnx_names:
            entries[name] = Entry(name, variants[name], onnx_models[name], onnx_models[name])
    return entries, bases


def reference_row(entries: dict, args: InferenceBenchmarkArguments) -> str | None:
    """The row the "x HuBERT Base" column divides by: `--reference_model`, else float32 eager `hubert-base`, else the
    first `hubert-base*` row."""
    for name in (args.reference_model, "hubert-base"):
        if name in entries:
            return name
    return next((name for name, entry in entries.items() if entry.variant.base == "hubert-base"), None)


def measure_shape(entries, bases, batch_size, duration_s, args, generator, failed) -> list[dict]:
    """Interleaved timings of all rows (and the reference matmuls) on one input shape."""
    samples = int(duration_s * SAMPLING_RATE)
    audio = torch.randn(batch_size, samples, generator=generator).to(args.device)
    inputs = {torch.float32: audio, torch.bfloat16: audio.to(torch.bfloat16)}  # converted before the clock runs
    matmul_dtypes = {torch.float32} | {entry.variant.compute_dtype(args) for entry in entries.values()}
    seconds = {name: [] for name in entries}
    matmul = {dtype: [] for dtype in matmul_dtypes}
    for round_index in range(args.repeats + 1):  # round 0 is the warm-up (and compilation, graph capture)
        for name, entry in list(entries.items()):
            try:
                elapsed = timed(lambda: entry(inputs, args), args.device)
            except Exception as error:  # noqa: BLE001 - one failing row (a compiler error) must not stop the others
                logger.error("%s failed at batch %d x %g s and is dropped: %s", name, batch_size, duration_s, error)
                failed[name] = f"batch {batch_size} x {duration_s:g} s: {type(error).__name__}: {error}"[:2000]
                del entries[name], seconds[name]
                continue
            if round_index:
                seconds[name].append(elapsed)
        for dtype in matmul_dtypes:
            elapsed = matmul_seconds(args.matmul_size, args.device, dtype)
            if round_index:
                matmul[dtype].append(elapsed)
    flop = 2 * args.matmul_size**3
    matmul_gflops = {dtype: flop / statistics.median(times) / 1e9 for dtype, times in matmul.items()}

    references = {}
    if args.check_outputs:
        with torch.inference_mode():
            references = {base: model(audio).last_hidden_state for base, model in bases.items()}
    reference = reference_row(entries, args)
    rows = []
    for name, entry in entries.items():
        median = statistics.median(seconds[name])
        flops = forward_flops(entry.module.config, batch_size, samples)
        compute_dtype = entry.variant.compute_dtype(args)
        row = {
            "model": name,
            "precision": entry.variant.precision,
            "runner": entry.variant.runner,
            "batch_size": batch_size,
            "duration_s": duration_s,
            "reference": reference,
            "seconds": seconds[name],
            "median_s": median,
            "audio_s_per_s": batch_size * duration_s / median,
            "gflop": flops / 1e9,
            "gflops": flops / median / 1e9,
            "matmul_gflops": matmul_gflops[compute_dtype],
        }
        if torch.bfloat16 in matmul_gflops:
            row["bf16_matmul_gflops"] = matmul_gflops[torch.bfloat16]
        for key, other in (("speedup_vs_hubert_base", reference), ("speedup_vs_alhubert_small", "alhubert-small")):
            if other in seconds:
                row[key] = statistics.median(base / own for base, own in zip(seconds[other], seconds[name]))
        reference_base = "alhubert-small" if entry.variant.runner == "onnx" else entry.variant.base
        if args.check_outputs and reference_base in references:
            row.update(compare_outputs(entry(inputs, args).last_hidden_state, references[reference_base]))
        if args.measure_memory and entry.variant.runner == "eager":
            # not for ONNX Runtime (its memory arena keeps the memory of the warm-up run, so the increase is ~0),
            # compiled models and CUDA graphs (static memory pools)
            row["peak_memory_mb"] = peak_memory_megabytes(lambda: entry(inputs, args), args.device)
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


def _percent(row: dict, key: str) -> str:
    return f"{100 * row['gflops'] / row[key]:.0f}" if row.get(key) else "-"


def markdown_table(results: dict) -> str:
    rows = results["rows"]
    matmuls = (
        f"{statistics.median(r['matmul_gflops'] for r in rows if r['precision'] == 'float32'):.3g} GFLOP/s float32"
        if any(r["precision"] == "float32" for r in rows)
        else ""
    )
    if any("bf16_matmul_gflops" in r for r in rows):
        bf16 = statistics.median(r["bf16_matmul_gflops"] for r in rows if "bf16_matmul_gflops" in r)
        matmuls += f"{', ' if matmuls else ''}{bf16:.3g} GFLOP/s bfloat16"
    references = " or ".join(dict.fromkeys(str(row.get("reference")) for row in rows)) or "HuBERT Base"
    lines = [
        f"Machine: {results['machine']['processor']}, {results['machine']['torch_threads']} torch threads, "
        f"torch {results['machine']['torch']}, device {results['arguments']['device']}, "
        f"--dtype {results['arguments']['dtype']}, {results['machine']['date']}, load average at start "
        f"{results['machine']['load_average'][0]:.1f}, at end "
        f"{results['machine'].get('load_average_end', [0])[0]:.1f}. "
        f"Reference {results['arguments']['matmul_size']}^3 matmul: {matmuls} (median over shapes).",
        "",
        "| model | parameters | weights file (MB; .onnx for onnx-*) |",
        "|---|---:|---:|",
    ]
    for name, info in results["models"].items():
        lines.append(f"| {name} | {info['parameters']:,} | {info['safetensors_mb']:.1f} |")
    lines += [
        "",
        f"| model | precision | batch | seconds of audio | median time (s) | audio s / s | x {references} | "
        "x alhubert-small | GFLOP | GFLOP/s | % of matmul | % of bf16 matmul | cosine to fp32 | "
        "forward peak memory (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        memory = f"{row['peak_memory_mb']:.0f}" if row.get("peak_memory_mb") is not None else "-"
        speedup = f"{row['speedup_vs_hubert_base']:.2f}" if "speedup_vs_hubert_base" in row else "-"
        own_speedup = f"{row['speedup_vs_alhubert_small']:.2f}" if "speedup_vs_alhubert_small" in row else "-"
        cosine = f"{row['mean_cosine']:.6f}" if "mean_cosine" in row else "-"
        lines.append(
            f"| {row['model']} | {row['precision']} | {row['batch_size']} | {row['duration_s']:g} | "
            f"{row['median_s']:.4f} | {row['audio_s_per_s']:.1f} | {speedup} | {own_speedup} | {row['gflop']:.0f} | "
            f"{row['gflops']:.0f} | {_percent(row, 'matmul_gflops')} | {_percent(row, 'bf16_matmul_gflops')} | "
            f"{cosine} | {memory} |"
        )
    if results.get("failed"):
        lines += ["", "Failed (dropped from the rounds):", ""]
        lines += [f"- {name}: {error.splitlines()[0][:300]}" for name, error in results["failed"].items()]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str):
    """Throughput (top) and speed-up against HuBERT Base (bottom) per batch size, one line per model."""
    try:
        import matplotlib
    except ImportError:
        logger.warning("matplotlib is not installed: no plot.")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch_sizes = sorted({row["batch_size"] for row in results["rows"]})
    durations = sorted({row["duration_s"] for row in results["rows"]})
    figure, axes = plt.subplots(2, len(batch_sizes), figsize=(5 * len(batch_sizes), 7), squeeze=False)
    setting = f"{results['arguments']['device']} {results['arguments']['dtype']}"
    for column, batch_size in enumerate(batch_sizes):
        for name in dict.fromkeys(row["model"] for row in results["rows"]):
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


def check_arguments(args: InferenceBenchmarkArguments):
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was given but torch sees no CUDA GPU; use --device cpu.")
    if args.dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"--dtype must be float32, bfloat16 or float16, got {args.dtype!r}.")
    variants = [Variant.parse(name, args) for name in args.models]  # raises on unknown names
    onnx_names = [name for name, variant in zip(args.models, variants) if variant.runner == "onnx"]
    if onnx_names and (args.device != "cpu" or args.dtype != "float32" or args.compile):
        raise ValueError(f"{onnx_names} run with ONNX Runtime on the CPU in float32: drop them or --device/--dtype.")


def main(argv: list[str] | None = None) -> dict:
    (args,) = HfArgumentParser(InferenceBenchmarkArguments).parse_args_into_dataclasses(argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    transformers_logging.disable_progress_bar()
    check_arguments(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    torch.manual_seed(args.seed)
    onnx_workdir = tempfile.TemporaryDirectory()
    entries, bases = build_entries(args, onnx_workdir.name)
    results = {"arguments": asdict(args), "machine": machine_description(args), "models": {}, "rows": [], "failed": {}}
    sizes = {}
    for name, entry in entries.items():
        if entry.variant.runner == "onnx":
            results["models"][name] = {
                "parameters": entry.module.num_parameters(),
                "safetensors_mb": entry.module.file_megabytes(),
            }
            continue
        if id(entry.module) not in sizes:
            sizes[id(entry.module)] = safetensors_megabytes(entry.module)
        results["models"][name] = {
            "parameters": entry.module.num_parameters(),
            "safetensors_mb": sizes[id(entry.module)],
        }

    generator = torch.Generator().manual_seed(args.seed)
    shapes = [(b, d) for d in args.durations_s for b in args.batch_sizes]
    for batch_size, duration_s in tqdm(shapes, desc="shapes"):
        rows = measure_shape(entries, bases, batch_size, duration_s, args, generator, results["failed"])
        results["rows"].extend(rows)
        for row in rows:
            logger.info(
                "%s batch %d x %g s: %.4f s, %.1f audio s/s, x%.2f HuBERT Base, %.0f%% of the bf16 matmul, "
                "cosine to fp32 %.6f",
                row["model"],
                batch_size,
                duration_s,
                row["median_s"],
                row["audio_s_per_s"],
                row.get("speedup_vs_hubert_base", float("nan")),
                100 * row["gflops"] / row.get("bf16_matmul_gflops", float("nan")),
                row.get("mean_cosine", float("nan")),
            )
    results["machine"]["load_average_end"] = os.getloadavg()

    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.join(args.output_dir, args.output_name or f"inference-{args.device}-{args.dtype}")
    with open(f"{stem}.json", "w") as file:
        json.dump(results, file, indent=2)
    with open(f"{stem}.md", "w") as file:
        file.write(markdown_table(results))
    print(markdown_table(results), flush=True)
    if args.plot:
        plot(results, f"{stem}.png")
    logger.info("Wrote %s.{json,md%s}", stem, ",png" if args.plot else "")
    onnx_workdir.cleanup()
    return results


if __name__ == "__main__":
    main()
