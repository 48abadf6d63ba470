#!/usr/bin/env bash
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
# The user paths on one CUDA GPU, run as a user runs them, on the bundled demo corpus (offline): distil the demo
# student in bf16 with a bf16 teacher, again with the teacher's targets cached, fine-tune it for CTC (full and SUPERB
# recipes), transcribe with the ASR pipeline, and extract features with `alhubert extract` on the GPU and on the CPU,
# which must agree. About 2 minutes on an H200; a log of every step with its seconds goes to OUTPUT_DIR.
#
#   benchmarks/gpu_user_paths.sh [OUTPUT_DIR]     # default: $OUT when set, else outputs/gpu-user-paths
#   DEVICE=cpu benchmarks/gpu_user_paths.sh       # the same steps on the CPU (a check of the script itself)
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT_DIR="${1:-${OUT:-outputs/gpu-user-paths}}"
mkdir -p "$OUTPUT_DIR"
WORK="$(mktemp -d)"
PYTHON="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DEVICE" = cpu ]; then PLACE=(--use_cpu true); else PLACE=(); fi
DATA=(--librispeech_root data/demo_corpus --librispeech_sets train-clean-demo --eval_librispeech_sets dev-clean-demo)

step() {
    echo; echo "== $*"
    local began=$SECONDS
    "$@"
    echo "-- step took $((SECONDS - began)) s"
}

{
    date -u +"%Y-%m-%d %H:%M UTC"
    "$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
    step "$PYTHON" scripts/distill.py demo --output_dir "$WORK/student" --bf16 true --teacher_dtype bfloat16 "${PLACE[@]}"
    step "$PYTHON" scripts/distill.py demo --output_dir "$WORK/student-cached" --bf16 true --teacher_dtype bfloat16 \
        --teacher_cache_dir "$WORK/teacher-cache" "${PLACE[@]}"
    step "$PYTHON" scripts/finetune_ctc.py --model_name_or_path "$WORK/student" --recipe full "${DATA[@]}" \
        --output_dir "$WORK/asr" --do_train --do_eval --max_steps 100 --learning_rate 1e-3 --bf16 true \
        --report_to none "${PLACE[@]}"
    step "$PYTHON" scripts/finetune_ctc.py --model_name_or_path "$WORK/student" --recipe superb --superb_lstm_size 64 \
        "${DATA[@]}" --output_dir "$WORK/superb" --do_train --do_eval --max_steps 100 --learning_rate 1e-3 \
        --weight_decay 0 --bf16 true --report_to none "${PLACE[@]}"
    AUDIO=(data/demo_corpus/dev-clean-demo/1006/200/*.flac)
    step "$PYTHON" -m alhubert.inference.cli extract "${AUDIO[@]}" --model "$WORK/student" \
        --output "$WORK/features-$DEVICE.safetensors" --device "$DEVICE"
    step "$PYTHON" -m alhubert.inference.cli extract "${AUDIO[@]}" --model "$WORK/student" \
        --output "$WORK/features-cpu-reference.safetensors" --device cpu
    step "$PYTHON" - "$WORK" "$DEVICE" "${AUDIO[0]}" <<'EOF'
import sys

import torch
from safetensors.torch import load_file
from transformers import pipeline

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)
from alhubert.models.audio import load_audio

work, device, audio = sys.argv[1:]
ours, reference = load_file(f"{work}/features-{device}.safetensors"), load_file(f"{work}/features-cpu-reference.safetensors")
worst = min(torch.nn.functional.cosine_similarity(ours[key].float(), reference[key].float(), dim=-1).min().item()
            for key in reference)
print(f"extract --device {device} against --device cpu: {len(reference)} files, lowest frame cosine {worst:.6f}")
assert sorted(ours) == sorted(reference) and worst > 0.999, "GPU and CPU features disagree"
for model in ("asr", "superb"):
    asr = pipeline("automatic-speech-recognition", model=f"{work}/{model}", device=device)
    text = asr(load_audio(audio, asr.feature_extractor.sampling_rate))["text"]  # a path would need the FFmpeg program
    print(f"{model} pipeline on {asr.device}: {text!r}")
EOF
    ls -l "$WORK"
} 2>&1 | tee "$OUTPUT_DIR/user-paths-$DEVICE.log"
