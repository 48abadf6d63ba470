#!/usr/bin/env bash
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
# One prepared GPU run: the inference benchmark in bf16 autocast (and fp32 for reference) and, when present, the
# distillation-step benchmark, on one CUDA GPU. Budget: under 10 minutes on an H100 (each step has a timeout).
#
#   benchmarks/gpu.sh [OUTPUT_DIR]      # default: $OUT when set, else benchmarks/results
#
# Needs a Python with a CUDA build of torch and this repository's requirements (transformers 5); PYTHON overrides the
# interpreter (default: .venv/bin/python when it sees a GPU, else python3). Nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT_DIR="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$OUTPUT_DIR"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

has_cuda() { "$1" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ] && has_cuda .venv/bin/python; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! has_cuda "$PYTHON"; then
    echo "No CUDA GPU visible to $PYTHON (torch: $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'not importable'))." >&2
    echo "Run this on a GPU machine, or set PYTHON to an interpreter with a CUDA build of torch." >&2
    exit 1
fi

{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    "$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
} | tee "$OUTPUT_DIR/gpu-machine.txt"

# bf16 autocast: the headline numbers (accuracy against fp32 is written into the JSON and the table).
timeout 300 "$PYTHON" benchmarks/inference.py --device cuda --dtype bfloat16 \
    --batch_sizes 1 4 16 --durations_s 2 10 30 --repeats 10 --output_dir "$OUTPUT_DIR" \
    2>&1 | tee "$OUTPUT_DIR/inference-cuda-bfloat16.log"

# fp32 (TF32 off, torch's default) for reference, fewer points.
timeout 120 "$PYTHON" benchmarks/inference.py --device cuda --dtype float32 \
    --batch_sizes 4 --durations_s 10 30 --repeats 10 --output_dir "$OUTPUT_DIR" \
    2>&1 | tee "$OUTPUT_DIR/inference-cuda-float32.log"

# Distillation step (benchmarks/distill_step.py), flags overridable with DISTILL_STEP_ARGS: the Trainer step in bf16
# autocast with a bf16 teacher and fused AdamW, then the interleaved comparison with the plain PyTorch reference step
# (fp32) and the fp32 / bf16 / cached-target variants, both at batch 8 x 10 s.
# shellcheck disable=SC2086
timeout 120 "$PYTHON" benchmarks/distill_step.py ${DISTILL_STEP_ARGS:---devices cuda --steps 10 --batch_size 8 --seconds 10 --optim adamw_torch_fused} \
    2>&1 | tee "$OUTPUT_DIR/distill-step-cuda.log" || echo "distill_step.py failed or timed out; see its log" >&2
# shellcheck disable=SC2086
timeout 150 "$PYTHON" benchmarks/distill_step.py --compare ${DISTILL_COMPARE_ARGS:---devices cuda --steps 10 --warmup 2 --batch_size 8 --seconds 10 --optim adamw_torch_fused --variants "alhubert fp32" "alhubert bf16" "alhubert bf16 + cached targets"} \
    2>&1 | tee "$OUTPUT_DIR/distill-compare-cuda.log" || echo "distill_step.py --compare failed or timed out; see its log" >&2
ls -l "$OUTPUT_DIR"
