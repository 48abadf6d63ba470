#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The paper in miniature: does distillation transfer a trained teacher's knowledge, and does ALHuBERT keep more of
it than a DistilHuBERT-shaped student of the same size?

Runs, with the project's own scripts (each stage a subprocess, as a user would run it):

1. `scripts/make_speech_corpus.py`: an espeak-ng corpus (train / dev / test; dev and test sentences and voices are
   never in train), cached in --corpus_dir;
2. `scripts/make_hubert.py` + `scripts/finetune_ctc.py --recipe full`: a 12-layer pre-LN HuBERT-shaped teacher
   trained from random weights with CTC on train, until its dev CER stops improving (early stopping, best checkpoint);
3. `scripts/distill.py`: students initialised from the teacher and distilled on the same audio with the same steps
   and optimiser: ALHuBERT 2 distinct layers x 12 applications and 3 x 12 (targets hidden states 2, 4, ..., 12, L2 +
   cosine), and a DistilHuBERT-shaped 2-layer student with prediction heads from its last layer to teacher layers 4,
   8 and 12 (L1 + cosine; the heads are dropped after distillation);
4. `scripts/init_student.py`: the floors (the teacher-initialised ALHuBERT before distillation and a random one) and
   the teacher as an ALHuBERT (same weights, same outputs) for the probe;
5. `scripts/finetune_ctc.py --recipe superb`: every frozen encoder probed with one fixed budget (weighted layer sum,
   BiLSTM, CTC), then greedy CER / WER on the held-out test split.

Writes `replication.{md,json,png}` to --results_dir. Finished stages are reused from --work_dir when their command
has not changed (delete the folder, or pass --fresh, to start over). The teacher's training runs alone with --jobs
intra-op threads; after it, --jobs stages run at once with one thread each.

    python benchmarks/replication.py             # the full run (46 min on 2 quiet CPU cores)
    python benchmarks/replication.py --quick     # a tiny end-to-end version (plumbing only, about a minute)
"""

import importlib.util
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import HfArgumentParser


REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
STAGE_MARKER = "replication_stage.json"
_SCRIPT_MODULES = {}
TARGETS = [2, 4, 6, 8, 10, 12]

logger = logging.getLogger("replication")


@dataclass
class ReplicationArguments:
    """Sizes and budgets of the miniature replication (defaults: the full run of the README)."""

    quick: bool = field(default=False, metadata={"help": "A tiny version of everything (plumbing check)."})
    corpus_dir: str = field(default=str(REPO / "data" / "speech_corpus"), metadata={"help": "Corpus folder (cache)."})
    work_dir: str = field(default=str(REPO / "outputs" / "replication"), metadata={"help": "Models and logs."})
    results_dir: str = field(default=str(REPO / "benchmarks" / "results"), metadata={"help": "Where the "
                             "replication.{md,json,png} go (with --quick: <work_dir>/results)."})
    fresh: bool = field(default=False, metadata={"help": "Ignore finished stages in --work_dir and rerun them."})
    collect_only: bool = field(
        default=False, metadata={"help": "Run nothing: report the stages already finished in --work_dir (rows or "
                                         "seeds whose stages are missing are left out and listed)."}
    )
    jobs: int = field(default=2, metadata={"help": "Stages run at once (each with one intra-op thread; the "
                                                        "teacher's training, which runs alone, with this many)."})
    in_process: bool | None = field(
        default=None, metadata={"help": "Run the scripts' main() in this process, one stage at a time, instead of as "
                                        "subprocesses (saves the start-up time of each; default: with --quick)."}
    )
    # corpus
    train_utterances: int = field(default=2000, metadata={"help": "Training utterances in the corpus."})
    dev_utterances: int = field(default=200, metadata={"help": "Dev utterances (teacher early stopping)."})
    test_utterances: int = field(default=300, metadata={"help": "Test utterances (all reported CER / WER)."})
    # teacher
    teacher_hidden_size: int = field(default=128, metadata={"help": "Teacher width."})
    teacher_layers: int = field(default=12, metadata={"help": "Teacher layers."})
    teacher_heads: int = field(default=4, metadata={"help": "Teacher attention heads."})
    teacher_conv_channels: int = field(default=32, metadata={"help": "Channels of the 7 conv layers."})
    teacher_max_steps: int = field(default=3000, metadata={"help": "Teacher CTC training: at most this many steps."})
    teacher_eval_steps: int = field(default=250, metadata={"help": "Teacher: dev CER every N steps."})
    teacher_patience: int = field(default=3, metadata={"help": "Teacher: stop after N evaluations without a better "
                                                               "dev CER (the best checkpoint is kept)."})
    teacher_dropout: float = field(
        default=0.0, metadata={"help": "Teacher: dropout and layerdrop during its CTC training (0 learned fastest)."}
    )
    teacher_learning_rate: float = field(default=2e-3, metadata={"help": "Teacher: peak learning rate."})
    # distillation
    distill_steps: int = field(default=800, metadata={"help": "Distillation steps (every student)."})
    distill_learning_rate: float = field(default=1e-3, metadata={"help": "Distillation peak learning rate."})
    distill_crop_samples: int = field(default=48000, metadata={"help": "Distillation: crop clips to this length."})
    seeds: int = field(default=3, metadata={"help": "Seeds of distillation + probe for the two small students."})
    other_seeds: int = field(default=1, metadata={"help": "Seeds of the probe for the other rows (teacher, 3x4, "
                                                          "floors)."})
    # probe
    probe_steps: int = field(default=600, metadata={"help": "SUPERB probe: training steps (every encoder)."})
    probe_learning_rate: float = field(default=3e-3, metadata={"help": "SUPERB probe: Adam learning rate."})
    probe_lstm_size: int = field(default=128, metadata={"help": "SUPERB probe: LSTM units per direction."})
    batch_size: int = field(default=8, metadata={"help": "Utterances per step (teacher, distillation, probe)."})

    def __post_init__(self):
        if self.quick:
            self.corpus_dir = self.corpus_dir if self.corpus_dir != ReplicationArguments.corpus_dir else str(
                REPO / "outputs" / "replication-quick" / "corpus")
            if self.work_dir == ReplicationArguments.work_dir:
                self.work_dir = str(REPO / "outputs" / "replication-quick")
            if self.results_dir == ReplicationArguments.results_dir:  # never overwrite the full run's published results
                self.results_dir = str(Path(self.work_dir) / "results")
            self.train_utterances, self.dev_utterances, self.test_utterances = 16, 4, 4
            self.teacher_hidden_size, self.teacher_heads, self.teacher_conv_channels = 32, 2, 8
            self.teacher_max_steps, self.teacher_eval_steps, self.teacher_patience = 4, 2, 1
            self.distill_steps, self.probe_steps, self.probe_lstm_size = 2, 2, 16
            self.other_seeds, self.batch_size = 1, 4
            if self.seeds == ReplicationArguments.seeds:  # --quick --seeds N keeps N
                self.seeds = 1
        if self.in_process is None:
            self.in_process = self.quick
        if self.in_process:
            self.jobs = 1


# ---------------------------------------------------------------------------------------------------------------
# Stages


def _python() -> list[str]:
    return [sys.executable]


HEARTBEAT_SECONDS = 60


class MissingStage(Exception):
    """A stage that --collect_only found unfinished."""


class Stage:
    """One command whose output folder is reused when it finished before with the same command."""

    def __init__(self, name: str, output_dir: Path, argv: list[str], log_dir: Path, threads: int = 1):
        self.name, self.output_dir, self.argv = name, output_dir, [str(arg) for arg in argv]
        self.threads = threads  # intra-op threads: 1 for stages that run --jobs at a time
        self.log = log_dir / f"{name}.log"
        self.wall_seconds = None
        self.reused = False

    def _marker(self) -> Path:
        return self.output_dir / STAGE_MARKER

    def done(self) -> bool:
        marker = self._marker()
        return marker.is_file() and json.loads(marker.read_text()).get("argv") == self.argv

    def _run_in_process(self) -> int:
        """Call the script's `main(argv)` here (the scripts are not a package: load each file once)."""
        script = self.argv[1]
        if script not in _SCRIPT_MODULES:
            spec = importlib.util.spec_from_file_location(Path(script).stem, script)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _SCRIPT_MODULES[script] = module
        try:
            _SCRIPT_MODULES[script].main(self.argv[2:])
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
        return 0

    def run(self, fresh: bool = False, in_process: bool = False) -> "Stage":
        if not fresh and self.done():
            stored = json.loads(self._marker().read_text())
            self.wall_seconds, self.reused = stored["wall_seconds"], True
            logger.info("%s: reused (%.0f s when it ran)", self.name, self.wall_seconds)
            return self
        if self.output_dir.exists():
            shutil.rmtree(self.output_dir)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads), "TOKENIZERS_PARALLELISM": "false",
               "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        logger.info("%s: running (log: %s)", self.name, self.log)
        began = time.perf_counter()
        with open(self.log, "w") as log:
            log.write(" ".join(self.argv) + "\n")
            log.flush()
            if in_process:
                try:
                    returncode = self._run_in_process()
                except Exception:  # noqa: BLE001  (reported like a failed subprocess)
                    log.write(traceback.format_exc())
                    returncode = 1
            else:
                process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
                while True:  # a line a minute, so that a stage of many minutes is never silent
                    try:
                        returncode = process.wait(timeout=HEARTBEAT_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        logger.info("%s: running for %.0f min (log: %s)", self.name,
                                    (time.perf_counter() - began) / 60, self.log)
        self.wall_seconds = round(time.perf_counter() - began, 1)
        if returncode != 0:
            tail = "".join(self.log.read_text().splitlines(keepends=True)[-30:])
            raise RuntimeError(f"Stage {self.name} failed (exit {returncode}); end of {self.log}:\n{tail}")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._marker().write_text(json.dumps({"argv": self.argv, "wall_seconds": self.wall_seconds}, indent=2))
        logger.info("%s: done in %.0f s", self.name, self.wall_seconds)
        return self


def _common_training_flags(seed: int) -> list:
    return ["--report_to", "none", "--use_cpu", "--dataloader_num_workers", "0", "--disable_tqdm", "True",
            "--seed", seed, "--train_sampling_strategy", "group_by_length"]


@dataclass
class Student:
    """A student recipe: its shape, its distillation targets and loss, how many seeds it gets."""

    name: str
    label: str
    num_hidden_groups: int
    num_hidden_layers: int
    student_layers: list[int]
    teacher_layers: list[int]
    loss_type: str
    prediction_heads: bool
    seeds: int


def students(args: ReplicationArguments) -> list[Student]:
    """ALHuBERT 2 x 12, the DistilHuBERT-shaped student and ALHuBERT 3 x 12."""
    layers = args.teacher_layers
    targets = [index for index in TARGETS if index <= layers]
    thirds = [layers // 3, 2 * layers // 3, layers]
    return [
        Student("alhubert-2x12", f"ALHuBERT, 2 distinct layers x {layers} applications (distilled)", 2, layers,
                targets, targets, "l2", False, args.seeds),
        Student("distilhubert-2", f"DistilHuBERT-shaped, 2 layers + heads to teacher layers "
                f"{', '.join(map(str, thirds))} (distilled)", 2, 2, [2, 2, 2], thirds, "l1", True, args.seeds),
        Student("alhubert-3x12", f"ALHuBERT, 3 distinct layers x {layers} applications (distilled)", 3, layers,
                targets, targets, "l2", False, args.other_seeds),
    ]


def corpus_stage(args, log_dir: Path) -> Stage:
    """The corpus (the generator has its own cache; the stage only records the command)."""
    argv = _python() + [SCRIPTS / "make_speech_corpus.py", "--output_dir", args.corpus_dir,
                        "--train_utterances", args.train_utterances, "--dev_utterances", args.dev_utterances,
                        "--test_utterances", args.test_utterances]
    if args.quick:
        argv += ["--train_speakers", 4, "--dev_speakers", 2, "--test_speakers", 2, "--num_proc", 1]
    return Stage("corpus", Path(args.work_dir) / "corpus-stage", argv, log_dir)


def teacher_stages(args, work: Path, log_dir: Path) -> list[Stage]:
    """Random HuBERT, its CTC training (early stopping on dev CER) and its ALHuBERT copy for the probe."""
    random_dir, teacher_dir = work / "teacher-random", work / "teacher"
    make = _python() + [SCRIPTS / "make_hubert.py", "--output_dir", random_dir,
                        "--hidden_size", args.teacher_hidden_size, "--num_hidden_layers", args.teacher_layers,
                        "--num_attention_heads", args.teacher_heads, "--conv_channels", args.teacher_conv_channels,
                        "--mask_feature_prob", 0.0, "--dropout", args.teacher_dropout, "--seed", 0]
    steps = args.teacher_max_steps
    train = _python() + [
        SCRIPTS / "finetune_ctc.py", "--model_name_or_path", random_dir, "--recipe", "full",
        "--librispeech_root", args.corpus_dir, "--librispeech_sets", "train", "--eval_librispeech_sets", "dev",
        "--output_dir", teacher_dir, "--overwrite_output_dir", "--do_train", "--do_eval",
        "--max_steps", steps, "--per_device_train_batch_size", args.batch_size, "--per_device_eval_batch_size", 1,
        "--learning_rate", args.teacher_learning_rate, "--warmup_steps", max(1, steps // 20),
        "--eval_strategy", "steps", "--eval_steps", args.teacher_eval_steps, "--save_strategy", "steps",
        "--save_steps", args.teacher_eval_steps, "--save_total_limit", 1, "--load_best_model_at_end",
        "--metric_for_best_model", "cer", "--greater_is_better", "false",
        "--early_stopping_patience", args.teacher_patience, "--logging_steps", max(1, min(20, steps // 4)),
        "--freeze_feature_encoder", "False", "--mask_time_prob", 0.05, "--layerdrop", args.teacher_dropout,
        *_common_training_flags(0),
    ]  # fmt: skip
    test = _python() + [
        SCRIPTS / "finetune_ctc.py", "--model_name_or_path", teacher_dir, "--recipe", "full",
        "--librispeech_root", args.corpus_dir, "--librispeech_sets", "train", "--eval_librispeech_sets", "test",
        "--output_dir", work / "teacher-test", "--do_eval", "--per_device_eval_batch_size", 1,
        *_common_training_flags(0),
    ]  # fmt: skip
    as_alhubert = _python() + [SCRIPTS / "init_student.py", "--teacher_name_or_path", teacher_dir,
                               "--num_hidden_groups", args.teacher_layers, "--num_hidden_layers", args.teacher_layers,
                               "--output_dir", work / "teacher-as-alhubert"]
    return [
        Stage("teacher-random", random_dir, make, log_dir),
        Stage("teacher", teacher_dir, train, log_dir, threads=args.jobs),  # runs alone: every core
        Stage("teacher-test", work / "teacher-test", test, log_dir),
        Stage("teacher-as-alhubert", work / "teacher-as-alhubert", as_alhubert, log_dir),
    ]


def floor_stage(args, work: Path, log_dir: Path, from_teacher: bool) -> Stage:
    name = "floor-teacher-init" if from_teacher else "floor-random"
    argv = _python() + [SCRIPTS / "init_student.py", "--teacher_name_or_path", work / "teacher",
                        "--num_hidden_groups", 2, "--num_hidden_layers", args.teacher_layers,
                        "--init_from_teacher", str(from_teacher), "--seed", 0, "--output_dir", work / name]
    return Stage(name, work / name, argv, log_dir)


def distill_stage(args, work: Path, log_dir: Path, student: Student, seed: int) -> Stage:
    name = f"{student.name}-seed{seed}"
    argv = _python() + [
        SCRIPTS / "distill.py", "--teacher_name_or_path", work / "teacher", "--teacher_dtype", "float32",
        "--num_hidden_groups", student.num_hidden_groups,
        "--num_hidden_layers", student.num_hidden_layers, "--init_from_teacher", "true",
        "--librispeech_root", args.corpus_dir, "--librispeech_sets", "train",
        "--max_length_samples", args.distill_crop_samples,
        "--student_layers", *student.student_layers, "--teacher_layers", *student.teacher_layers,
        "--loss_type", student.loss_type, "--cosine_weight", 1.0, "--prediction_heads", str(student.prediction_heads),
        "--output_dir", work / name, "--max_steps", args.distill_steps,
        "--per_device_train_batch_size", args.batch_size, "--learning_rate", args.distill_learning_rate,
        "--adam_beta1", 0.9, "--adam_beta2", 0.98, "--adam_epsilon", 1e-6, "--weight_decay", 1e-6,
        "--lr_scheduler_type", "linear", "--warmup_steps", 0.07, "--max_grad_norm", 5.0,
        "--logging_steps", max(1, min(10, args.distill_steps // 2)), "--save_strategy", "no",
        "--eval_strategy", "no", *_common_training_flags(seed),
    ]  # fmt: skip
    return Stage(name, work / name, argv, log_dir)


def probe_stage(args, work: Path, log_dir: Path, encoder: str, seed: int) -> Stage:
    name = f"probe-{encoder}" if encoder.endswith(f"seed{seed}") else f"probe-{encoder}-seed{seed}"
    steps = args.probe_steps
    argv = _python() + [
        SCRIPTS / "finetune_ctc.py", "--model_name_or_path", work / encoder, "--recipe", "superb",
        "--librispeech_root", args.corpus_dir, "--librispeech_sets", "train", "--eval_librispeech_sets", "test",
        "--output_dir", work / name, "--overwrite_output_dir", "--do_train", "--do_eval",
        "--max_steps", steps, "--per_device_train_batch_size", args.batch_size,
        # Unpadded evaluation (batch 1): greedy decoding of a padded batch also reads padding frames.
        "--per_device_eval_batch_size", 1, "--learning_rate", args.probe_learning_rate, "--weight_decay", 0,
        "--warmup_steps", max(1, steps // 10), "--superb_lstm_size", args.probe_lstm_size,
        "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", max(1, min(25, steps // 2)),
        *_common_training_flags(seed),
    ]  # fmt: skip
    return Stage(name, work / name, argv, log_dir)


# ---------------------------------------------------------------------------------------------------------------
# Results


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def spread(values: list[float]) -> dict:
    """Mean, minimum and maximum of `values` (rounded), and how many there are."""
    return {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4),
            "n": len(values)}


def encoder_parameters(folder: Path) -> int:
    """Parameters of the encoder saved in `folder` (read from the safetensors header, shared layers once)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        for key in weights.keys():
            count = 1
            for size in weights.get_slice(key).get_shape():
                count *= size
            total += count
    return total


def probe_result(stage: Stage) -> dict:
    metrics = _json(stage.output_dir / "eval_results.json")
    return {"cer": metrics["eval_cer"], "wer": metrics["eval_wer"], "wall_seconds": stage.wall_seconds}


def loss_curve(distill_dir: Path) -> list[list[float]]:
    state = _json(distill_dir / "trainer_state.json")
    return [[entry["step"], round(entry["loss"], 4)] for entry in state.get("log_history", []) if "loss" in entry]


def write_results(results: dict, results_dir: Path):
    """replication.json, replication.md (table) and replication.png (CER bars with seed ranges, loss curves)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "replication.json").write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / "replication.md").write_text(markdown(results))
    plot(results, results_dir / "replication.png")


def _range(entry: dict, key: str) -> str:
    value = entry[key]
    if value["n"] == 1:
        return f"{value['mean']:.3f}"
    return f"{value['mean']:.3f} [{value['min']:.3f}, {value['max']:.3f}]"


def markdown(results: dict) -> str:
    lines = [
        "# The paper in miniature: test CER / WER of a SUPERB-style probe on each frozen encoder",
        "",
        f"Corpus: {results['corpus']}. Teacher: {results['teacher']['description']}; "
        f"its own CTC head on test: CER {results['teacher']['own_head_test_cer']:.3f}, "
        f"WER {results['teacher']['own_head_test_wer']:.3f}.",
        "",
        "| Encoder | Role | Encoder parameters | Seeds | Test CER mean [min, max] | Test WER mean [min, max] | "
        "Final distillation loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        loss = row.get("final_distillation_loss")
        loss_text = "-" if loss is None else (f"{loss['mean']:.3f}" if loss["n"] == 1 else
                                              f"{loss['mean']:.3f} [{loss['min']:.3f}, {loss['max']:.3f}]")
        lines.append(f"| {row['label']} | {row['role']} | {row['encoder_parameters'] / 1e6:.2f} M | "
                     f"{row['cer']['n']} | {_range(row, 'cer')} | {_range(row, 'wer')} | {loss_text} |")
    settings = results["settings"]
    lines += [
        "",
        f"Distillation: {settings['distill_steps']} steps x batch {settings['batch_size']}, AdamW lr "
        f"{settings['distill_learning_rate']} (linear, 7 % warm-up), clips cropped to "
        f"{settings['distill_crop_samples']} samples, same for every student. Probe: {settings['probe_steps']} "
        f"steps x batch {settings['batch_size']}, Adam lr {settings['probe_learning_rate']}, 2-layer BiLSTM "
        f"{settings['probe_lstm_size']}, greedy decoding, test utterances one at a time.",
        "",
        f"Wall time: {results['wall_seconds'] / 60:.1f} min for this invocation, {results['stages_reused']} of "
        f"{results['stages']} stages reused from an earlier invocation (they took "
        f"{results['reused_wall_seconds'] / 60:.1f} min when they ran); teacher training "
        f"{results['teacher']['wall_seconds'] / 60:.1f} min. Load average (1, 5, 15 min) at start "
        f"{results['load_start']}, at end {results['load_end']}; the teacher's training alone with "
        f"{results['jobs']} intra-op threads, then {results['jobs']} stage(s) at once with one thread each.",
        *([f"Not run (left out of the table): {', '.join(results['not_run'])}.", ""] if results.get("not_run") else []),
        "",
    ]
    return "\n".join(lines)


def plot(results: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    figure, (bars, curves) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
    means = [row["cer"]["mean"] for row in rows]
    errors = [[row["cer"]["mean"] - row["cer"]["min"] for row in rows],
              [row["cer"]["max"] - row["cer"]["mean"] for row in rows]]
    colours = {"ceiling": "tab:green", "student": "tab:blue", "floor": "tab:grey"}
    positions = range(len(rows))
    bars.barh(positions, means, xerr=errors, color=[colours[row["role"]] for row in rows], capsize=4)
    bars.set_yticks(list(positions), [row["short"] for row in rows])
    bars.invert_yaxis()
    bars.set_xlabel("test CER (lower is better); bars: seed range")
    bars.set_title("SUPERB-style probe on the frozen encoder")
    for position, mean in zip(positions, means):
        bars.text(mean, position, f" {mean:.3f}", va="center", ha="left", fontsize=8)
    for row in rows:
        for seed, curve in enumerate(row.get("loss_curves", [])):
            if curve:
                steps, losses = zip(*curve)
                curves.plot(steps, losses, label=row["short"] if seed == 0 else None,
                             color=row.get("colour"), alpha=0.8)
    curves.set_yscale("log")
    curves.set_xlabel("distillation step")
    curves.set_ylabel("training loss (L2 or L1, + cosine; log scale)")
    curves.set_title("Distillation loss (one line per seed)")
    curves.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------------------------------------------


def run_all(args: ReplicationArguments) -> dict:
    work = Path(args.work_dir)
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_start = " ".join(f"{value:.2f}" for value in os.getloadavg())
    began = time.perf_counter()
    all_stages = []

    def run(stage: Stage) -> Stage:
        all_stages.append(stage)
        if args.collect_only and not stage.done():
            raise MissingStage(stage.name)
        return stage.run(args.fresh, args.in_process)

    run(corpus_stage(args, log_dir))
    teacher_random, teacher, teacher_test, teacher_as_alhubert = teacher_stages(args, work, log_dir)
    run(teacher_random)
    run(teacher)
    recipes = students(args)
    chains = []  # (kind, key, seed, [stages]) run one after the other; the chains run --jobs at a time

    failures, not_run = [], []

    def chain(stages: list[Stage]) -> list[Stage]:
        done = []
        try:
            for stage in stages:
                done.append(run(stage))
        except MissingStage as missing:
            all_stages.remove(stages[len(done)])
            not_run.append(str(missing))
        except RuntimeError as error:  # keep the other chains' results; report the failure at the end
            logger.error("%s", error)
            failures.append(str(error).splitlines()[0])
        return done

    run(teacher_as_alhubert)
    floors = [run(floor_stage(args, work, log_dir, from_teacher)) for from_teacher in (True, False)]
    # Seed 0 of every row first, then the other seeds: an interrupted run has already one result per row. Within a
    # seed: the two small students, the teacher and the floors, then the 3-layer student.
    for seed in range(max(args.seeds, args.other_seeds)):
        distilled = {}
        for student in recipes:
            if seed < student.seeds:
                distill = distill_stage(args, work, log_dir, student, seed)
                probe = probe_stage(args, work, log_dir, distill.name, seed)
                distilled[student.name] = (student.name, seed, [distill, probe])
        chains += [distilled.pop(name) for name in ("distilhubert-2", "alhubert-2x12") if name in distilled]
        if seed < args.other_seeds:
            for key, encoder in [("teacher", teacher_as_alhubert), *((floor.name, floor) for floor in floors)]:
                chains.append((key, seed, [probe_stage(args, work, log_dir, encoder.name, seed)]))
        if seed == 0:
            chains.append(("teacher-test", 0, [teacher_test]))
        chains += list(distilled.values())
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        finished = list(pool.map(lambda item: (item[0], item[1], chain(item[2])), chains))
    load_end = " ".join(f"{value:.2f}" for value in os.getloadavg())

    # ---- collect
    probes, distills = {}, {}
    for key, seed, stages in finished:
        for stage in stages:
            if stage.name.startswith("probe-"):
                probes.setdefault(key, []).append(probe_result(stage))
            elif key in {student.name for student in recipes}:
                distills.setdefault(key, []).append(stage)
    colours = {"alhubert-2x12": "tab:blue", "distilhubert-2": "tab:orange", "alhubert-3x12": "tab:purple"}
    rows = [{"key": "teacher", "label": f"Teacher ({args.teacher_layers}-layer HuBERT-shaped, CTC-trained)",
             "short": "teacher", "role": "ceiling", "encoder": str(work / "teacher-as-alhubert")}]
    for student in recipes:
        rows.append({"key": student.name, "label": student.label, "short": student.name, "role": "student",
                     "encoder": str(work / f"{student.name}-seed0"), "colour": colours[student.name],
                     "loss_type": f"{student.loss_type} + cosine",
                     "targets": [f"{s}->{t}" for s, t in zip(student.student_layers, student.teacher_layers)]})
    rows.append({"key": "floor-teacher-init", "short": "2x12 teacher-init, not distilled", "role": "floor",
                 "label": f"ALHuBERT 2 x {args.teacher_layers}, initialised from the teacher, not distilled",
                 "encoder": str(work / "floor-teacher-init")})
    rows.append({"key": "floor-random", "short": "2x12 random", "role": "floor",
                 "label": f"ALHuBERT 2 x {args.teacher_layers}, random weights", "encoder": str(work / "floor-random")})
    rows = [row for row in rows if row["key"] in probes]  # rows whose probes all failed are left out
    for row in rows:
        runs = probes[row["key"]]
        row["cer"] = spread([run["cer"] for run in runs])
        row["wer"] = spread([run["wer"] for run in runs])
        row["probe_runs"] = runs
        row["encoder_parameters"] = encoder_parameters(Path(row["encoder"]))
        if row["key"] in distills:
            curves = [loss_curve(stage.output_dir) for stage in distills[row["key"]]]
            row["loss_curves"] = curves
            row["final_distillation_loss"] = spread([curve[-1][1] for curve in curves if curve])
            row["distill_wall_seconds"] = [stage.wall_seconds for stage in distills[row["key"]]]
    teacher_state = _json(teacher.output_dir / "trainer_state.json")
    teacher_eval = _json(teacher_test.output_dir / "eval_results.json")
    manifest = _json(Path(args.corpus_dir) / "manifest.json")
    corpus = ", ".join(f"{split} {info['utterances']} utterances / {info['hours']:.2f} h / {len(info['speakers'])} "
                       f"voices" for split, info in manifest.get("splits", {}).items())
    return {
        "settings": asdict(args),
        "corpus": corpus + " (espeak-ng; dev and test sentences and voices never in train)",
        "teacher": {
            "description": f"{args.teacher_layers}-layer pre-LN HuBERT-shaped HubertModel, hidden "
                           f"{args.teacher_hidden_size}, {args.teacher_heads} heads, conv {args.teacher_conv_channels} "
                           "channels, trained from random weights with CTC (supervised)",
            "dev_cer_curve": [[entry["step"], entry["eval_cer"]] for entry in teacher_state.get("log_history", [])
                              if "eval_cer" in entry],
            "best_checkpoint": teacher_state.get("best_model_checkpoint"),
            "best_dev_cer": teacher_state.get("best_metric"),
            "steps": teacher_state.get("global_step"),
            "own_head_test_cer": teacher_eval.get("eval_cer"),
            "own_head_test_wer": teacher_eval.get("eval_wer"),
            "wall_seconds": teacher.wall_seconds,
        },
        "rows": rows,
        "failures": failures,
        "not_run": not_run,
        "stages": len(all_stages),
        "stages_reused": sum(stage.reused for stage in all_stages),
        "reused_wall_seconds": round(sum(stage.wall_seconds for stage in all_stages if stage.reused), 1),
        "stage_wall_seconds": {stage.name: stage.wall_seconds for stage in all_stages},
        "wall_seconds": round(time.perf_counter() - began, 1),
        "jobs": args.jobs,
        "load_start": load_start,
        "load_end": load_end,
    }


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(ReplicationArguments).parse_args_into_dataclasses(args=argv)
    if args.in_process:
        import torch

        torch.set_num_threads(1)  # as the subprocesses run
    try:
        results = run_all(args)
    except MissingStage as missing:
        sys.exit(f"error: --collect_only: the stage {missing} has not finished in {args.work_dir}; run "
                 "`python benchmarks/replication.py` first (finished stages are reused).")
    results_dir = Path(args.results_dir)
    write_results(results, results_dir)
    logger.info("Wrote %s/replication.{md,json,png} in %.1f min", results_dir, results["wall_seconds"] / 60)
    print(markdown(results))
    if results["failures"]:
        sys.exit(f"{len(results['failures'])} stage(s) failed: " + "; ".join(results["failures"]))
    return results


if __name__ == "__main__":
    main()
