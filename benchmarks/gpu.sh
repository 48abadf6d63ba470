#!/usr/bin/env bash
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
# One prepared GPU run, under 8 minutes on an H200 including start-up: every step runs under its own timeout, cut
# to what is left of the 460 s budget (a step with under 20 s left is skipped), and a failing step does not stop the
# others. Steps, most important first (logs, .md and .json tables in OUTPUT_DIR):
#   inference-cuda-bf16      native bf16 (weights in bf16) ALHuBERT and HubertModel, bf16 autocast and fp32 rows,
#                            batch 1, 4, 16 x 2, 10, 30 s; "% of bf16 matmul" of an 8192^3 matmul in every row
#   host-overhead-cuda       benchmarks/host_overhead.py: the launch-bound forward (tiny widths, real depth),
#                            ALHuBERT against HubertModel
#   positional-conv-cuda     benchmarks/positional_conv.py: the positional convolution alone, cuDNN bf16 / fp32 /
#                            cuDNN search / the fast path's batched matmuls, at 100, 500 and 1500 frames
#   profile-cuda-bf16        benchmarks/profile_inference.py: GPU time per operator of native bf16 at batch 1 x 10 s
#                            (the first H200 run measured native bf16 at 15 ms there, float32 at 7 ms)
#   inference-cuda-cudnn-benchmark   bf16 and fp32 rows at batch 1, 4 x 10 s with cuDNN's algorithm search on
#   inference-cuda-graphs    the same native bf16 models replayed from CUDA graphs, small batches
#   distill-step-cuda        benchmarks/distill_step.py: the Trainer step (bf16 student, bf16 teacher, fused AdamW)
#   distill-compare-cuda     benchmarks/distill_step.py --compare: against the plain PyTorch reference step
#   inference-cuda-compiled-alhubert / -hubert   torch.compile(mode="reduce-overhead") at batch 1 x 2 s
#
#   benchmarks/gpu.sh [OUTPUT_DIR]      # default: $OUT when set, else benchmarks/results
#
# Needs python3 with a CUDA build of torch, transformers 5, numpy and safetensors (the inference steps import nothing
# else from outside the standard library; tqdm comes with transformers; matplotlib is optional); the distillation
# steps also need datasets and accelerate. PYTHON overrides the interpreter (default: .venv/bin/python when it sees a
# GPU, else python3). PYTHONPATH is set to this repository. Nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT_DIR="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$OUTPUT_DIR"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
BUDGET_S="${GPU_BUDGET_S:-460}"

has_cuda() { "$1" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ] && has_cuda .venv/bin/python; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! has_cuda "$PYTHON"; then
    version=$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'not importable')
    echo "No CUDA GPU visible to $PYTHON (torch: $version)." >&2
    echo "Run this on a GPU machine, or set PYTHON to an interpreter with a CUDA build of torch." >&2
    exit 1
fi

{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    "$PYTHON" -c "import torch, transformers, numpy, safetensors; print('torch', torch.__version__, 'cuda', \
torch.version.cuda, 'transformers', transformers.__version__, 'numpy', numpy.__version__)"
    nproc
    uptime
} 2>&1 | tee "$OUTPUT_DIR/gpu-machine.txt"

set +e
FAILED=()
# step NAME SECONDS COMMAND...: run COMMAND under `timeout` (at most what is left of the budget), log to NAME.log
step() {
    local name=$1 seconds=$2 left status start
    shift 2
    left=$((BUDGET_S - SECONDS))
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped, ${left} s left of the ${BUDGET_S} s budget" | tee -a "$OUTPUT_DIR/steps.txt"
        FAILED+=("$name (skipped: budget)")
        return
    fi
    [ "$seconds" -gt "$left" ] && seconds=$left
    echo "== $name (timeout ${seconds} s): $*" | tee -a "$OUTPUT_DIR/steps.txt"
    start=$SECONDS
    timeout --kill-after=5 "$seconds" "$@" > "$OUTPUT_DIR/$name.log" 2>&1
    status=$?
    tail -n 30 "$OUTPUT_DIR/$name.log"
    echo "== $name: exit $status after $((SECONDS - start)) s" | tee -a "$OUTPUT_DIR/steps.txt"
    [ "$status" -eq 0 ] || FAILED+=("$name (exit $status$([ "$status" -eq 124 ] && echo ', timed out'))")
}

INFERENCE=("$PYTHON" benchmarks/inference.py --device cuda --matmul_size 8192 --plot false --output_dir "$OUTPUT_DIR")

# Native bf16 against HubertModel native bf16, both under bf16 autocast, and fp32 (TF32 off, torch's default).
step inference-cuda-bf16 100 "${INFERENCE[@]}" --output_name inference-cuda-bf16 \
    --models alhubert-small-bf16 hubert-base-bf16 alhubert-small-autocast hubert-base-autocast \
    alhubert-small hubert-base \
    --batch_sizes 1 4 16 --durations_s 2 10 30 --repeats 10

# The host code of one launch-bound forward: ALHuBERT's must not pace it slower than HubertModel's.
step host-overhead-cuda 30 "$PYTHON" benchmarks/host_overhead.py --device cuda --dtype bfloat16 --rounds 11 --calls 50

# Native bf16 slower than float32 at batch 1 and 4 x 10 s: the prime suspect (the positional convolution) alone in
# each formulation, then which operator takes the time, and whether cuDNN's heuristic picks a slow convolution
# algorithm there (the same rows with torch.backends.cudnn.benchmark on).
step positional-conv-cuda 40 "$PYTHON" benchmarks/positional_conv.py --device cuda
step profile-cuda-bf16 45 "$PYTHON" benchmarks/profile_inference.py --device cuda --model alhubert-small-bf16 \
    --batch_size 1 --duration_s 10 --rows 25
step inference-cuda-cudnn-benchmark 60 "${INFERENCE[@]}" --output_name inference-cuda-cudnn-benchmark \
    --measure_memory false --cudnn_benchmark true --reference_model hubert-base-bf16 \
    --models alhubert-small-bf16 hubert-base-bf16 alhubert-small hubert-base --batch_sizes 1 4 --durations_s 10 \
    --repeats 10

# Launch overhead: CUDA graphs at small batches, beside the same models launched op by op.
step inference-cuda-graphs 60 "${INFERENCE[@]}" --output_name inference-cuda-graphs --measure_memory false \
    --reference_model hubert-base-bf16 \
    --models alhubert-small-bf16-graphs hubert-base-bf16-graphs alhubert-small-bf16 hubert-base-bf16 \
    hubert-base-autocast \
    --batch_sizes 1 4 16 --durations_s 2 10 --repeats 20

# Distillation step (benchmarks/distill_step.py), flags overridable with DISTILL_STEP_ARGS: the Trainer step in bf16
# autocast with a bf16 teacher and fused AdamW, then the interleaved comparison with the plain PyTorch reference step
# (fp32) and the fp32 / bf16 / cached-target variants, both at batch 8 x 10 s.
DEFAULT_STEP_ARGS=(--devices cuda --steps 10 --batch_size 8 --seconds 10 --optim adamw_torch_fused)
DEFAULT_COMPARE_ARGS=(--devices cuda --steps 10 --warmup 2 --batch_size 8 --seconds 10 --optim adamw_torch_fused
                      --variants "alhubert fp32" "alhubert bf16" "alhubert bf16 + cached targets")
if [ -n "${DISTILL_STEP_ARGS:-}" ]; then read -r -a DEFAULT_STEP_ARGS <<< "$DISTILL_STEP_ARGS"; fi
step distill-step-cuda 60 "$PYTHON" benchmarks/distill_step.py "${DEFAULT_STEP_ARGS[@]}"
if [ -n "${DISTILL_COMPARE_ARGS:-}" ]; then
    eval "DEFAULT_COMPARE_ARGS=($DISTILL_COMPARE_ARGS)"  # quoted variant names stay one argument each
fi
step distill-compare-cuda 75 "$PYTHON" benchmarks/distill_step.py --compare "${DEFAULT_COMPARE_ARGS[@]}"

# torch.compile with CUDA graphs (mode reduce-overhead) at batch 1 x 2 s, one model per step (compilation is slow).
step inference-cuda-compiled-alhubert 90 "${INFERENCE[@]}" --output_name inference-cuda-compiled-alhubert \
    --measure_memory false --compile_mode reduce-overhead --reference_model hubert-base-bf16 \
    --models alhubert-small-bf16-compiled alhubert-small-bf16-graphs alhubert-small-bf16 hubert-base-bf16 \
    hubert-base-autocast \
    --batch_sizes 1 --durations_s 2 --repeats 30
step inference-cuda-compiled-hubert 90 "${INFERENCE[@]}" --output_name inference-cuda-compiled-hubert \
    --measure_memory false --compile_mode reduce-overhead --reference_model hubert-base-bf16 \
    --models hubert-base-bf16-compiled hubert-base-bf16-graphs hubert-base-bf16 hubert-base-autocast \
    --batch_sizes 1 --durations_s 2 --repeats 30

ls -l "$OUTPUT_DIR"
echo "Total: $SECONDS s."
if [ "${#FAILED[@]}" -gt 0 ]; then
    printf 'Failed or skipped: %s\n' "${FAILED[@]}" | tee -a "$OUTPUT_DIR/steps.txt"
    exit 1
fi
