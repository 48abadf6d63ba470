#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The paper in miniature, with two teachers: does distillation transfer a teacher's knowledge, and does ALHuBERT keep
more of it than a DistilHuBERT-shaped student of the same size, on content and speaker tasks?

Runs, with the project's own scripts (each stage a subprocess, as a user would run it):

1. `scripts/make_speech_corpus.py`: an espeak-ng corpus (train / dev / test, dev and test sentences and voices never
   in train; sid-test: new sentences by the training voices; espeak-ng's own phonemes for every utterance), cached;
2. two 12-layer pre-LN HuBERT-shaped teachers, each from its own random start (`scripts/make_hubert.py`; the same
   transformer, teacher A with a conv front end of 64 channels instead of 32):
   - `ssl` (teacher A), self-supervised as in the HuBERT paper, in two iterations: `scripts/kmeans_targets.py` on
     MFCC, `scripts/pretrain_hubert.py` from random weights; k-means on the hidden states of that model's middle
     layer, `scripts/pretrain_hubert.py` again on the new targets, continuing iteration 1's encoder (HuBERT restarts
     from random weights: `--ssl_iteration2_start random`); both iterations also predict the unmasked frames'
     clusters (`--ssl_unmasked_weight`), which this budget needs (benchmarks/results/ssl_teacher_trials.md);
   - `ctc` (teacher B): trained from random weights with character CTC (`scripts/finetune_ctc.py --recipe full`,
     early stopping on dev CER, best checkpoint kept);
3. for each teacher, `scripts/distill.py`: students initialised from it and distilled on the same audio with the same
   steps and optimiser: ALHuBERT 2 distinct layers x 12 applications and 3 x 12 (targets hidden states 2, 4, ..., 12,
   L2 + cosine), and a DistilHuBERT-shaped 2-layer student with prediction heads from its last layer to teacher layers
   4, 8 and 12 (L1 + cosine; the heads are dropped after distillation);
4. `scripts/init_student.py`: the floors (the teacher-initialised ALHuBERT 2 x 12 before distillation, and a random
   one in the shape of the teacher's random start) and each teacher as an ALHuBERT (same weights, same outputs) for
   the probes;
5. SUPERB-style probes, every encoder frozen, a softmax-weighted sum of all its hidden states, one fixed budget per
   task: ASR (`finetune_ctc.py --recipe superb`: BiLSTM + character CTC, test CER / WER), PR (the same head over
   espeak-ng's phonemes, test phoneme error rate) and SID (`finetune_classification.py --freeze_base_model
   --use_weighted_layer_sum`: mean pooling + linear classifier over the training voices, accuracy on sid-test);
   the MFCC row (SUPERB's FBANK baseline, shared by both tables): the same probes over the iteration-1 input
   features (`--upstream mfcc`: 39-dimensional MFCC at the 20 ms frames, no encoder).

Writes `replication.{md,json,png}` to --results_dir: one table per teacher, one column per task (seed ranges).
Finished stages are reused from --work_dir when their command has not changed (delete the folder, or pass --fresh,
to start over). The teachers' training runs alone with --jobs intra-op threads; after it, --jobs stages run at once
with one thread each. `--plan` prints the stages and an estimate of the wall time without running anything.

    python benchmarks/replication.py             # the full run (about 2 h 30 min on 2 CPU cores)
    python benchmarks/replication.py --quick     # a tiny end-to-end version (plumbing only)
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
TEACHERS = ("ssl", "ctc")
TASKS = ("asr", "pr", "sid")

logger = logging.getLogger("replication")


@dataclass
class ReplicationArguments:
    """Sizes and budgets of the miniature replication (defaults: the full run)."""

    quick: bool = field(default=False, metadata={"help": "A tiny version of everything (plumbing check)."})
    corpus_dir: str = field(default=str(REPO / "data" / "speech_corpus"), metadata={"help": "Corpus folder (cache)."})
    work_dir: str = field(default=str(REPO / "outputs" / "replication"), metadata={"help": "Models and logs."})
    results_dir: str = field(
        default=str(REPO / "benchmarks" / "results"),
        metadata={"help": "Where the replication.{md,json,png} go (with --quick: <work_dir>/results)."},
    )
    fresh: bool = field(default=False, metadata={"help": "Ignore finished stages in --work_dir and rerun them."})
    collect_only: bool = field(
        default=False,
        metadata={
            "help": "Run nothing: report the stages already finished in --work_dir (rows or "
            "seeds whose stages are missing are left out and listed)."
        },
    )
    plan: bool = field(default=False, metadata={"help": "Print the stages and the estimated wall time; run nothing."})
    teachers: list[str] = field(
        default_factory=lambda: ["ssl", "ctc"],
        metadata={"help": "Teachers to run: ssl (self-supervised HuBERT, two iterations) and/or ctc (CTC-trained)."},
    )
    tasks: list[str] = field(default_factory=lambda: list(TASKS), metadata={"help": f"Probe tasks: {TASKS}."})
    device: str = field(
        default="cpu",
        metadata={
            "help": "Where the training stages run: cpu, or cuda (the Trainer's default device; budgets unchanged).",
            "choices": ("cpu", "cuda"),
        },
    )
    jobs: int = field(
        default=2,
        metadata={
            "help": "Stages run at once (each with one intra-op thread; the "
            "teachers' training, which runs alone, with this many)."
        },
    )
    in_process: bool | None = field(
        default=None,
        metadata={
            "help": "Run the scripts' main() in this process, one stage at a time, instead of as "
            "subprocesses (saves the start-up time of each; default: with --quick)."
        },
    )
    # corpus
    train_utterances: int = field(default=2000, metadata={"help": "Training utterances in the corpus."})
    dev_utterances: int = field(default=200, metadata={"help": "Dev utterances (teacher early stopping)."})
    test_utterances: int = field(default=300, metadata={"help": "Test utterances (ASR and PR results)."})
    sid_test_utterances: int = field(
        default=320, metadata={"help": "Held-out sentences of the training voices (SID results)."}
    )
    # teachers' shape (both)
    teacher_hidden_size: int = field(default=128, metadata={"help": "Teacher width."})
    teacher_layers: int = field(default=12, metadata={"help": "Teacher layers."})
    teacher_heads: int = field(default=4, metadata={"help": "Teacher attention heads."})
    teacher_conv_channels: int = field(default=32, metadata={"help": "Channels of the 7 conv layers."})
    teacher_dropout: float = field(
        default=0.0, metadata={"help": "Teachers: dropout and layerdrop during their training (0 learned fastest)."}
    )
    # teacher B: CTC
    teacher_max_steps: int = field(default=3000, metadata={"help": "CTC teacher: at most this many steps."})
    teacher_eval_steps: int = field(default=250, metadata={"help": "CTC teacher: dev CER every N steps."})
    teacher_patience: int = field(
        default=3,
        metadata={
            "help": "CTC teacher: stop after N evaluations without a better dev CER (the best checkpoint is kept)."
        },
    )
    teacher_learning_rate: float = field(default=2e-3, metadata={"help": "CTC teacher: peak learning rate."})
    # teacher A: self-supervised HuBERT
    ssl_conv_channels: int = field(
        default=64,
        metadata={
            "help": "Channels of the 7 conv layers of teacher A (its own random start and random floor when they "
            "differ from --teacher_conv_channels; 64 beat 32 on PR in benchmarks/results/ssl_teacher_trials.md)."
        },
    )
    ssl_clusters: list[int] = field(
        default_factory=lambda: [200, 200],
        metadata={"help": "k-means clusters of iteration 1 (MFCC) and iteration 2 (hidden states)."},
    )
    ssl_layer: int | None = field(
        default=None,
        metadata={"help": "Hidden states clustered for iteration 2 (default: the middle layer, teacher_layers / 2)."},
    )
    ssl_fit_utterances: int = field(default=1000, metadata={"help": "Utterances k-means is fitted on."})
    ssl_steps: list[int] = field(
        default_factory=lambda: [1500, 1500], metadata={"help": "Pre-training steps of iteration 1 and iteration 2."}
    )
    # masking and learning rate: what learned fastest in a short trial on the demo corpus (200 steps, one thread):
    # spans of 5 frames from 65 % of the frames at lr 2e-3 reached a masked accuracy of 0.15 (HuBERT's 0.8 x 10 at
    # 1e-3: 0.10; the most frequent cluster: 0.08); lr 5e-3, final_dim 256 or a conv gradient scale of 0.1 did not help
    ssl_learning_rate: float = field(default=2e-3, metadata={"help": "Pre-training peak learning rate."})
    ssl_final_dim: int = field(default=64, metadata={"help": "Pre-training head: projection / label embedding width."})
    ssl_mask_prob: float = field(
        default=0.65, metadata={"help": "Pre-training: share of frames that start a masked span."}
    )
    ssl_mask_length: int = field(default=5, metadata={"help": "Pre-training: frames per masked span."})
    ssl_feature_grad_mult: float = field(default=1.0, metadata={"help": "Pre-training: conv stack gradient scale."})
    # benchmarks/results/ssl_teacher_trials.md: at this budget, predicting the unmasked frames' clusters too, 200
    # clusters and iteration 2 continuing iteration 1 beat HuBERT's masked-only loss and random restart
    ssl_unmasked_weight: float = field(
        default=3.0, metadata={"help": "Pre-training: weight of the cross-entropy on unmasked frames (masked: 1)."}
    )
    ssl_iteration2_start: str = field(
        default="iteration1",
        metadata={
            "help": "Iteration 2 starts from random weights (HuBERT's recipe) or from iteration 1's encoder "
            "(iteration1: its own steps come on top of iteration 1's; a new head for the new clusters).",
            "choices": ("random", "iteration1"),
        },
    )
    # distillation
    distill_steps: int = field(default=500, metadata={"help": "Distillation steps (every student)."})
    distill_learning_rate: float = field(default=1e-3, metadata={"help": "Distillation peak learning rate."})
    distill_crop_samples: int = field(default=48000, metadata={"help": "Distillation: crop clips to this length."})
    seeds: int = field(default=3, metadata={"help": "Seeds of distillation + probes for the two small students."})
    other_seeds: int = field(
        default=1, metadata={"help": "Seeds of the probes for the other rows (teacher, 3x12, floors)."}
    )
    # probes
    probe_steps: int = field(default=400, metadata={"help": "ASR and PR probes: training steps (every encoder)."})
    probe_learning_rate: float = field(default=3e-3, metadata={"help": "ASR and PR probes: Adam learning rate."})
    probe_lstm_size: int = field(default=128, metadata={"help": "ASR and PR probes: LSTM units per direction."})
    sid_steps: int = field(default=200, metadata={"help": "SID probe: training steps (every encoder)."})
    sid_learning_rate: float = field(default=5e-3, metadata={"help": "SID probe: AdamW learning rate."})
    batch_size: int = field(default=8, metadata={"help": "Utterances per step (teachers, distillation, probes)."})

    def __post_init__(self):
        if self.quick:
            self.corpus_dir = (
                self.corpus_dir
                if self.corpus_dir != ReplicationArguments.corpus_dir
                else str(REPO / "outputs" / "replication-quick" / "corpus")
            )
            if self.work_dir == ReplicationArguments.work_dir:
                self.work_dir = str(REPO / "outputs" / "replication-quick")
            # never overwrite the full run's published results
            if self.results_dir == ReplicationArguments.results_dir:
                self.results_dir = str(Path(self.work_dir) / "results")
            self.train_utterances, self.dev_utterances, self.test_utterances, self.sid_test_utterances = 16, 4, 4, 4
            self.teacher_hidden_size, self.teacher_heads, self.teacher_conv_channels = 32, 2, 8
            self.ssl_conv_channels = 16
            self.teacher_max_steps, self.teacher_eval_steps, self.teacher_patience = 4, 2, 1
            self.ssl_clusters, self.ssl_fit_utterances, self.ssl_steps, self.ssl_final_dim = [8, 8], 8, [2, 2], 16
            self.distill_steps, self.probe_steps, self.sid_steps, self.probe_lstm_size = 2, 2, 2, 16
            self.other_seeds, self.batch_size = 1, 4
            if self.seeds == ReplicationArguments.seeds:  # --quick --seeds N keeps N
                self.seeds = 1
        if self.ssl_layer is None:
            self.ssl_layer = self.teacher_layers // 2
        unknown = sorted(set(self.teachers) - set(TEACHERS)) + sorted(set(self.tasks) - set(TASKS))
        if unknown or len(self.ssl_clusters) != 2 or len(self.ssl_steps) != 2:
            raise ValueError(
                f"Unknown teachers or tasks {unknown} (teachers: {TEACHERS}, tasks: {TASKS}), or "
                "--ssl_clusters / --ssl_steps without exactly two values."
            )
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
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
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
                        logger.info(
                            "%s: running for %.0f min (log: %s)",
                            self.name,
                            (time.perf_counter() - began) / 60,
                            self.log,
                        )
        self.wall_seconds = round(time.perf_counter() - began, 1)
        if returncode != 0:
            tail = "".join(self.log.read_text().splitlines(keepends=True)[-30:])
            raise RuntimeError(f"Stage {self.name} failed (exit {returncode}); end of {self.log}:\n{tail}")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._marker().write_text(json.dumps({"argv": self.argv, "wall_seconds": self.wall_seconds}, indent=2))
        logger.info("%s: done in %.0f s", self.name, self.wall_seconds)
        return self


def _common_training_flags(args, seed: int) -> list:
    device = ["--use_cpu"] if args.device == "cpu" else []
    return [
        "--report_to",
        "none",
        *device,
        "--dataloader_num_workers",
        "0",
        "--disable_tqdm",
        "True",
        "--seed",
        seed,
        "--train_sampling_strategy",
        "group_by_length",
    ]


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
        Student(
            "alhubert-2x12",
            f"ALHuBERT, 2 distinct layers x {layers} applications (distilled)",
            2,
            layers,
            targets,
            targets,
            "l2",
            False,
            args.seeds,
        ),
        Student(
            "distilhubert-2",
            f"DistilHuBERT-shaped, 2 layers + heads to teacher layers {', '.join(map(str, thirds))} (distilled)",
            2,
            2,
            [2, 2, 2],
            thirds,
            "l1",
            True,
            args.seeds,
        ),
        Student(
            "alhubert-3x12",
            f"ALHuBERT, 3 distinct layers x {layers} applications (distilled)",
            3,
            layers,
            targets,
            targets,
            "l2",
            False,
            args.other_seeds,
        ),
    ]


def corpus_stage(args, log_dir: Path) -> Stage:
    """The corpus (the generator has its own cache; the stage only records the command)."""
    argv = _python() + [
        SCRIPTS / "make_speech_corpus.py",
        "--output_dir",
        args.corpus_dir,
        "--train_utterances",
        args.train_utterances,
        "--dev_utterances",
        args.dev_utterances,
        "--test_utterances",
        args.test_utterances,
        "--sid_test_utterances",
        args.sid_test_utterances,
    ]
    if args.quick:
        argv += ["--train_speakers", 4, "--dev_speakers", 2, "--test_speakers", 2, "--num_proc", 1]
    return Stage("corpus", Path(args.work_dir) / "corpus-stage", argv, log_dir)


def conv_channels(args, teacher: str) -> int:
    """Channels of the conv front end of `teacher` (and of its random start, floor and students)."""
    return args.ssl_conv_channels if teacher == "ssl" else args.teacher_conv_channels


def _random_suffix(args, teacher: str) -> str:
    """Teacher A has a random start (and random floor) of its own when its conv front end is wider."""
    return "-ssl" if conv_channels(args, teacher) != args.teacher_conv_channels else ""


def random_teacher_folder(args, work: Path, teacher: str) -> Path:
    """The random HuBERT `teacher` starts from."""
    return work / f"teacher-random{_random_suffix(args, teacher)}"


def random_floor_folder(args, work: Path, teacher: str) -> Path:
    """ALHuBERT 2 x 12 with random weights in the shape of `teacher`'s random start."""
    return work / f"floor-random{_random_suffix(args, teacher)}"


def random_teacher_stage(args, work: Path, log_dir: Path, teacher: str) -> Stage:
    """The random HuBERT `teacher` starts from (and whose shape its random floor takes)."""
    folder = random_teacher_folder(args, work, teacher)
    argv = _python() + [
        SCRIPTS / "make_hubert.py",
        "--output_dir",
        folder,
        "--hidden_size",
        args.teacher_hidden_size,
        "--num_hidden_layers",
        args.teacher_layers,
        "--num_attention_heads",
        args.teacher_heads,
        "--conv_channels",
        conv_channels(args, teacher),
        "--mask_feature_prob",
        0.0,
        "--dropout",
        args.teacher_dropout,
        "--seed",
        0,
    ]
    return Stage(folder.name, folder, argv, log_dir)


def ctc_teacher_stages(args, work: Path, log_dir: Path) -> list[Stage]:
    """Teacher B: CTC training from the random HuBERT (early stopping on dev CER), and its own head's test CER."""
    folder, steps = work / "ctc", args.teacher_max_steps
    train = _python() + [
        SCRIPTS / "finetune_ctc.py", "--model_name_or_path", random_teacher_folder(args, work, "ctc"),
        "--recipe", "full",
        "--librispeech_root", args.corpus_dir, "--librispeech_sets", "train", "--eval_librispeech_sets", "dev",
        "--output_dir", folder / "teacher", "--overwrite_output_dir", "--do_train", "--do_eval",
        "--max_steps", steps, "--per_device_train_batch_size", args.batch_size, "--per_device_eval_batch_size", 1,
        "--learning_rate", args.teacher_learning_rate, "--warmup_steps", max(1, steps // 20),
        "--eval_strategy", "steps", "--eval_steps", args.teacher_eval_steps, "--save_strategy", "steps",
        "--save_steps", args.teacher_eval_steps, "--save_total_limit", 1, "--load_best_model_at_end",
        "--metric_for_best_model", "cer", "--greater_is_better", "false",
        "--early_stopping_patience", args.teacher_patience, "--logging_steps", max(1, min(20, steps // 4)),
        "--freeze_feature_encoder", "False", "--mask_time_prob", 0.05, "--layerdrop", args.teacher_dropout,
        *_common_training_flags(args, 0),
    ]  # fmt: skip
    test = _python() + [
        SCRIPTS / "finetune_ctc.py", "--model_name_or_path", folder / "teacher", "--recipe", "full",
        "--librispeech_root", args.corpus_dir, "--librispeech_sets", "train", "--eval_librispeech_sets", "test",
        "--output_dir", folder / "teacher-test", "--do_eval", "--per_device_eval_batch_size", 1,
        *_common_training_flags(args, 0),
    ]  # fmt: skip
    return [
        Stage("ctc-teacher", folder / "teacher", train, log_dir, threads=args.jobs),  # runs alone: every core
        Stage("ctc-teacher-test", folder / "teacher-test", test, log_dir),
    ]


def ssl_teacher_stages(args, work: Path, log_dir: Path) -> list[Stage]:
    """Teacher A, HuBERT's two iterations: MFCC k-means, pre-training from random weights; k-means on the middle
    layer of that model, pre-training again (from random weights, or from iteration 1's encoder)."""
    folder, stages = work / "ssl", []
    data = ["--librispeech_root", args.corpus_dir, "--librispeech_sets", "train", "--min_length_samples", 400]
    for iteration in (1, 2):
        targets, model = folder / f"targets-it{iteration}", folder / ("teacher" if iteration == 2 else "hubert-it1")
        features = [] if iteration == 1 else ["--model_name_or_path", folder / "hubert-it1", "--layer", args.ssl_layer]
        kmeans = _python() + [
            SCRIPTS / "kmeans_targets.py",
            *data,
            "--output_dir",
            targets,
            "--overwrite_output_dir",
            "--num_clusters",
            args.ssl_clusters[iteration - 1],
            "--fit_utterances",
            args.ssl_fit_utterances,
            "--seed",
            0,
            *features,
        ]
        steps = args.ssl_steps[iteration - 1]
        start = folder / "hubert-it1" if iteration == 2 and args.ssl_iteration2_start == "iteration1" else None
        pretrain = _python() + [
            SCRIPTS / "pretrain_hubert.py", "--model_name_or_path", start or random_teacher_folder(args, work, "ssl"),
            "--labels_dir", targets,
            *data, "--output_dir", model, "--overwrite_output_dir", "--final_dim", args.ssl_final_dim,
            "--mask_prob", args.ssl_mask_prob, "--mask_length", args.ssl_mask_length,
            "--feature_grad_mult", args.ssl_feature_grad_mult,
            *(["--unmasked_weight", args.ssl_unmasked_weight] if args.ssl_unmasked_weight else []),
            "--layerdrop", args.teacher_dropout,
            "--max_steps", steps, "--per_device_train_batch_size", args.batch_size,
            "--learning_rate", args.ssl_learning_rate, "--warmup_steps", max(1, steps // 12),
            "--lr_scheduler_type", "linear", "--weight_decay", 0.01, "--adam_beta2", 0.98, "--adam_epsilon", 1e-6,
            "--logging_steps", max(1, min(20, steps // 4)), "--save_strategy", "no", "--eval_strategy", "no",
            *_common_training_flags(args, 0),
        ]  # fmt: skip
        stages += [
            Stage(f"ssl-targets-it{iteration}", targets, kmeans, log_dir, threads=args.jobs),
            Stage(f"ssl-{model.name}", model, pretrain, log_dir, threads=args.jobs),
        ]
    return stages


def teacher_copy_stage(args, folder: Path, teacher: str, log_dir: Path) -> Stage:
    """The teacher as an ALHuBERT with one distinct layer per teacher layer (same weights and outputs): the probes
    take ALHuBERT encoders."""
    argv = _python() + [
        SCRIPTS / "init_student.py",
        "--teacher_name_or_path",
        folder / "teacher",
        "--num_hidden_groups",
        args.teacher_layers,
        "--num_hidden_layers",
        args.teacher_layers,
        "--output_dir",
        folder / "teacher-as-alhubert",
    ]
    return Stage(f"{teacher}-teacher-as-alhubert", folder / "teacher-as-alhubert", argv, log_dir)


def floor_stage(args, source: Path, output_dir: Path, stage_name: str, from_teacher: bool, log_dir: Path) -> Stage:
    """ALHuBERT 2 x 12 initialised from the teacher in `source` (not distilled), or random with its shape."""
    argv = _python() + [
        SCRIPTS / "init_student.py",
        "--teacher_name_or_path",
        source,
        "--num_hidden_groups",
        2,
        "--num_hidden_layers",
        args.teacher_layers,
        "--init_from_teacher",
        str(from_teacher),
        "--seed",
        0,
        "--output_dir",
        output_dir,
    ]
    return Stage(stage_name, output_dir, argv, log_dir)


def distill_stage(args, folder: Path, log_dir: Path, student: Student, seed: int) -> Stage:
    name = f"{student.name}-seed{seed}"
    argv = _python() + [
        SCRIPTS / "distill.py", "--teacher_name_or_path", folder / "teacher", "--teacher_dtype", "float32",
        "--num_hidden_groups", student.num_hidden_groups,
        "--num_hidden_layers", student.num_hidden_layers, "--init_from_teacher", "true",
        "--librispeech_root", args.corpus_dir, "--librispeech_sets", "train",
        "--max_length_samples", args.distill_crop_samples,
        "--student_layers", *student.student_layers, "--teacher_layers", *student.teacher_layers,
        "--loss_type", student.loss_type, "--cosine_weight", 1.0, "--prediction_heads", str(student.prediction_heads),
        "--output_dir", folder / name, "--max_steps", args.distill_steps,
        "--per_device_train_batch_size", args.batch_size, "--learning_rate", args.distill_learning_rate,
        "--adam_beta1", 0.9, "--adam_beta2", 0.98, "--adam_epsilon", 1e-6, "--weight_decay", 1e-6,
        "--lr_scheduler_type", "linear", "--warmup_steps", 0.07, "--max_grad_norm", 5.0,
        "--logging_steps", max(1, min(10, args.distill_steps // 2)), "--save_strategy", "no",
        "--eval_strategy", "no", *_common_training_flags(args, seed),
    ]  # fmt: skip
    return Stage(f"{folder.name}-{name}", folder / name, argv, log_dir)


def probe_stage(args, encoder: Path, task: str, seed: int, log_dir: Path, mfcc: bool = False) -> Stage:
    """One SUPERB-style probe of the frozen `encoder`: `asr`, `pr` or `sid`; with `mfcc`, the same probe of the MFCC
    (`--upstream mfcc`: `encoder` gives only the conv stack's frames and the feature extractor)."""
    suffix = "" if encoder.name.endswith(f"seed{seed}") else f"-seed{seed}"
    output_dir = encoder.parent / f"probe-{task}-{'mfcc' if mfcc else encoder.name}{suffix}"
    name = output_dir.name if encoder.parent == Path(args.work_dir) else f"{encoder.parent.name}-{output_dir.name}"
    data = ["--librispeech_root", args.corpus_dir, "--librispeech_sets", "train"]
    common = [
        "--model_name_or_path",
        encoder,
        *(["--upstream", "mfcc"] if mfcc else []),
        *data,
        "--output_dir",
        output_dir,
        "--overwrite_output_dir",
        "--do_train",
        "--do_eval",
        "--per_device_train_batch_size",
        args.batch_size,
        "--weight_decay",
        0,
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        *_common_training_flags(args, seed),
    ]
    if task == "sid":
        steps = args.sid_steps
        argv = _python() + [
            SCRIPTS / "finetune_classification.py", *common, "--freeze_base_model", "true",
            "--use_weighted_layer_sum", "true", "--label_column_name", "speaker",
            "--eval_librispeech_sets", "sid-test",
            "--min_length_samples", 400, "--max_steps", steps, "--per_device_eval_batch_size", args.batch_size,
            "--learning_rate", args.sid_learning_rate, "--warmup_steps", max(1, steps // 10),
            "--logging_steps", max(1, min(25, steps // 2)),
        ]  # fmt: skip
        return Stage(name, output_dir, argv, log_dir)
    steps = args.probe_steps
    phonemes = ["--transcripts", "phonemes", "--text_column_name", "phonemes"] if task == "pr" else []
    argv = _python() + [
        SCRIPTS / "finetune_ctc.py", *common, "--recipe", "superb", *phonemes, "--eval_librispeech_sets", "test",
        "--max_steps", steps,
        # Unpadded evaluation (batch 1): greedy decoding of a padded batch also reads padding frames.
        "--per_device_eval_batch_size", 1, "--learning_rate", args.probe_learning_rate,
        "--warmup_steps", max(1, steps // 10), "--superb_lstm_size", args.probe_lstm_size,
        "--logging_steps", max(1, min(25, steps // 2)),
    ]  # fmt: skip
    return Stage(name, output_dir, argv, log_dir)


# ---------------------------------------------------------------------------------------------------------------
# Results

METRICS = {
    "asr": (("asr_cer", "eval_cer"), ("asr_wer", "eval_wer")),
    "pr": (("pr_per", "eval_per"),),
    "sid": (("sid_accuracy", "eval_accuracy"),),
}
COLUMNS = {
    "asr_cer": "ASR test CER",
    "asr_wer": "ASR test WER",
    "pr_per": "PR test PER",
    "sid_accuracy": "SID accuracy",
}


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def spread(values: list[float]) -> dict:
    """Mean, minimum and maximum of `values` (rounded), and how many there are."""
    return {
        "mean": round(statistics.fmean(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


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


def probe_result(stage: Stage, task: str) -> dict:
    metrics = _json(stage.output_dir / "eval_results.json")
    return {**{name: metrics[key] for name, key in METRICS[task]}, "wall_seconds": stage.wall_seconds}


def loss_curve(distill_dir: Path) -> list[list[float]]:
    state = _json(distill_dir / "trainer_state.json")
    return [[entry["step"], round(entry["loss"], 4)] for entry in state.get("log_history", []) if "loss" in entry]


def write_results(results: dict, results_dir: Path):
    """replication.json, replication.md (one table per teacher) and replication.png (bars with seed ranges)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "replication.json").write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / "replication.md").write_text(markdown(results))
    plot(results, results_dir / "replication.png")


def _range(entry: dict, key: str) -> str:
    value = entry.get(key)
    if value is None:
        return "-"
    if value["n"] == 1:
        return f"{value['mean']:.3f}"
    return f"{value['mean']:.3f} [{value['min']:.3f}, {value['max']:.3f}]"


def markdown(results: dict) -> str:
    columns = [
        column
        for column in COLUMNS
        if any(column in row for teacher in results["teachers"].values() for row in teacher["rows"])
    ]
    lines = [
        "# The paper in miniature: SUPERB-style probes of each frozen encoder, per teacher",
        "",
        f"Corpus: {results['corpus']}.",
        "",
    ]
    for key, teacher in results["teachers"].items():
        lines += [f"## Teacher {key}: {teacher['description']}", ""]
        lines += [f"{teacher['summary']}", ""] if teacher.get("summary") else []
        for check, baseline in (("beats_random_floor", "the random floor"), ("beats_mfcc", "the MFCC row")):
            if teacher.get(check):
                lines += [
                    f"Teacher better than {baseline} on: "
                    + ", ".join(
                        f"{COLUMNS[metric]} {'yes' if better else 'NO'}" for metric, better in teacher[check].items()
                    )
                    + ".",
                    "",
                ]
        lines += [
            "| Encoder | Role | Encoder parameters | Seeds | "
            + " | ".join(f"{COLUMNS[column]} mean [min, max]" for column in columns)
            + " | Final distillation loss |",
            "|---|---|---|---|" + "---|" * len(columns) + "---|",
        ]
        for row in teacher["rows"]:
            seeds = max(row[column]["n"] for column in columns if column in row)
            lines.append(
                f"| {row['label']} | {row['role']} | {row['encoder_parameters'] / 1e6:.2f} M | {seeds} | "
                + " | ".join(_range(row, column) for column in columns)
                + f" | {_range(row, 'final_distillation_loss')} |"
            )
        lines.append("")
    settings = results["settings"]
    lines += [
        f"Distillation: {settings['distill_steps']} steps x batch {settings['batch_size']}, AdamW lr "
        f"{settings['distill_learning_rate']} (linear, 7 % warm-up), clips cropped to "
        f"{settings['distill_crop_samples']} samples, same for every student. ASR and PR probes: "
        f"{settings['probe_steps']} steps x batch {settings['batch_size']}, Adam lr "
        f"{settings['probe_learning_rate']}, "
        f"2-layer BiLSTM {settings['probe_lstm_size']}, greedy decoding, test utterances one at a time. SID probe: "
        f"{settings['sid_steps']} steps, lr {settings['sid_learning_rate']}, mean pooling and a linear classifier. "
        "Every probe reads a softmax-weighted sum of all hidden states of the frozen encoder.",
        "",
        f"Wall time: {results['wall_seconds'] / 60:.1f} min for this invocation, {results['stages_reused']} of "
        f"{results['stages']} stages reused from an earlier invocation (they took "
        f"{results['reused_wall_seconds'] / 60:.1f} min when they ran). Load average (1, 5, 15 min) at start "
        f"{results['load_start']}, at end {results['load_end']}; the teachers' training alone with "
        f"{results['jobs']} intra-op threads, then {results['jobs']} stage(s) at once with one thread each.",
        *(
            [f"Not run (left out of the tables): {', '.join(results['not_run'])}.", ""]
            if results.get("not_run")
            else []
        ),
        "",
    ]
    return "\n".join(lines)


def plot(results: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teachers = results["teachers"]
    columns = [
        column
        for column in ("asr_cer", "pr_per", "sid_accuracy")
        if any(column in row for teacher in teachers.values() for row in teacher["rows"])
    ]
    figure, axes = plt.subplots(
        len(teachers), len(columns), figsize=(5 * len(columns), 3.6 * len(teachers)), squeeze=False
    )
    colours = {"ceiling": "tab:green", "student": "tab:blue", "floor": "tab:grey", "baseline": "tab:orange"}
    for line, (key, teacher) in zip(axes, teachers.items()):
        for axis, column in zip(line, columns):
            rows = [row for row in teacher["rows"] if column in row]
            means = [row[column]["mean"] for row in rows]
            errors = [
                [row[column]["mean"] - row[column]["min"] for row in rows],
                [row[column]["max"] - row[column]["mean"] for row in rows],
            ]
            positions = range(len(rows))
            axis.barh(positions, means, xerr=errors, color=[colours[row["role"]] for row in rows], capsize=3)
            axis.set_yticks(list(positions), [row["short"] for row in rows], fontsize=7)
            axis.invert_yaxis()
            better = "higher" if column == "sid_accuracy" else "lower"
            axis.set_title(f"teacher {key}: {COLUMNS[column]} ({better} is better)", fontsize=9)
            for position, mean in zip(positions, means):
                axis.text(mean, position, f" {mean:.3f}", va="center", ha="left", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------------------------------------------
# The time each kind of stage takes, in seconds per step, for --plan: the medians of the published run's stages on
# 2 quiet AMD EPYC cores (wall time / steps, start-up and test decoding included): the CTC teacher 0.45 and teacher
# A's pre-training 0.51 (64 conv channels) on 2 threads; per thread, two stages at once: ALHuBERT distillation 0.57,
# DistilHuBERT-shaped 0.29, ASR and PR probes 0.42, SID probe 0.31 (teacher A's stages, with its 64-channel conv
# front end, in a later session on the same kind of machine: 0.64, 0.37, 0.43 and 0.33). The same kinds of stage took
# about 1.4 times less on the (faster) machine of an earlier run.
SECONDS_PER_STEP = {
    "ctc-teacher": 0.45,
    "pretrain": 0.51,
    "alhubert": 0.57,
    "distilhubert": 0.29,
    "asr": 0.42,
    "pr": 0.42,
    "sid": 0.31,
}
SECONDS_OTHER = {"kmeans": 60, "small": 10}


def estimate_seconds(args: ReplicationArguments, stage: Stage) -> float:
    """The --plan estimate of one stage's wall time (its own threads)."""
    name = stage.name
    if "targets-it" in name:
        return SECONDS_OTHER["kmeans"]
    if name == "ctc-teacher":
        return SECONDS_PER_STEP["ctc-teacher"] * args.teacher_max_steps
    if name.startswith("ssl-hubert-it1") or name == "ssl-teacher":
        return SECONDS_PER_STEP["pretrain"] * args.ssl_steps[name == "ssl-teacher"]
    for task in TASKS:
        if f"probe-{task}-" in name:
            return SECONDS_PER_STEP[task] * (args.sid_steps if task == "sid" else args.probe_steps)
    if "distilhubert" in name:
        return SECONDS_PER_STEP["distilhubert"] * args.distill_steps
    if "alhubert-" in name and "teacher" not in name and "floor" not in name:
        return SECONDS_PER_STEP["alhubert"] * args.distill_steps
    return SECONDS_OTHER["small"]


# ---------------------------------------------------------------------------------------------------------------


def build_plan(args: ReplicationArguments) -> tuple[list[Stage], list[tuple]]:
    """The stages that run alone (in order) and the chains of stages that run --jobs at a time:
    (teachers whose tables the chain's results join, row key, seed, [stages]) each."""
    work = Path(args.work_dir)
    log_dir = work / "logs"
    # teachers that share a random start share its random floor: {floor folder: (teachers)}
    floors = {}
    for teacher in args.teachers:
        floors.setdefault(random_floor_folder(args, work, teacher), []).append(teacher)
    serial = [corpus_stage(args, log_dir)]
    serial += [random_teacher_stage(args, work, log_dir, owners[0]) for owners in floors.values()]
    teacher_tests = {}
    for teacher in args.teachers:
        if teacher == "ctc":
            train, test = ctc_teacher_stages(args, work, log_dir)
            serial.append(train)
            teacher_tests[teacher] = test
        else:
            serial += ssl_teacher_stages(args, work, log_dir)
    serial += [
        floor_stage(args, random_teacher_folder(args, work, owners[0]), floor, floor.name, False, log_dir)
        for floor, owners in floors.items()
    ]
    for teacher in args.teachers:
        folder = work / teacher
        serial += [
            teacher_copy_stage(args, folder, teacher, log_dir),
            floor_stage(
                args, folder / "teacher", folder / "floor-teacher-init", f"{teacher}-floor-teacher-init", True, log_dir
            ),
        ]
    recipes = students(args)
    chains = []
    # Seed 0 of every row first, then the other seeds: an interrupted run has already one result per row. Within a
    # seed: the two small students, the teachers and the floors, then the 3-layer student.
    for seed in range(max(args.seeds, args.other_seeds)):
        for teacher in args.teachers:
            folder = work / teacher
            distilled = {}
            for student in recipes:
                if seed < student.seeds:
                    distill = distill_stage(args, folder, log_dir, student, seed)
                    probes = [probe_stage(args, distill.output_dir, task, seed, log_dir) for task in args.tasks]
                    distilled[student.name] = ((teacher,), student.name, seed, [distill, *probes])
            chains += [distilled.pop(name) for name in ("distilhubert-2", "alhubert-2x12") if name in distilled]
            if seed < args.other_seeds:
                for key in ("teacher-as-alhubert", "floor-teacher-init"):
                    for task in args.tasks:
                        chains.append(((teacher,), key, seed, [probe_stage(args, folder / key, task, seed, log_dir)]))
            if seed == 0 and teacher in teacher_tests:
                chains.append(((teacher,), "teacher-test", 0, [teacher_tests[teacher]]))
            chains += list(distilled.values())
        if seed < args.other_seeds:
            for floor, owners in floors.items():
                for task in args.tasks:
                    chains.append(
                        (tuple(owners), "floor-random", seed, [probe_stage(args, floor, task, seed, log_dir)])
                    )
            # the MFCC row: a random floor's folder gives the frames (any conv width gives the same); the plain
            # floor-random when there is one (its name sorts first), so that its cached probes stay valid
            frames = min(floors, key=lambda folder: folder.name)
            for task in args.tasks:
                chains.append(
                    (tuple(args.teachers), "mfcc", seed, [probe_stage(args, frames, task, seed, log_dir, mfcc=True)])
                )
    return serial, chains


def print_plan(args: ReplicationArguments, serial: list[Stage], chains: list[tuple]) -> float:
    """Print every stage with its estimated time; return the estimated wall time in seconds."""
    alone = sum(estimate_seconds(args, stage) for stage in serial)
    parallel = sum(estimate_seconds(args, stage) for *_, stages in chains for stage in stages)
    for stage in serial:
        print(f"{stage.name:<48} {estimate_seconds(args, stage) / 60:6.1f} min (alone)")
    for *_, stages in chains:
        for stage in stages:
            print(f"{stage.name:<48} {estimate_seconds(args, stage) / 60:6.1f} min")
    total = alone + parallel / args.jobs
    print(
        f"{len(serial) + sum(len(stages) for *_, stages in chains)} stages; estimated wall time {total / 60:.0f} "
        f"min ({alone / 60:.0f} min alone, then {parallel / 60:.0f} min of one-thread stages on {args.jobs} jobs)"
    )
    return total


def teacher_summary(args, work: Path, teacher: str, stages: dict) -> dict:
    """What the teacher is and how its training went."""
    shape = (
        f"{args.teacher_layers}-layer pre-LN HuBERT-shaped HubertModel, hidden {args.teacher_hidden_size}, "
        f"{args.teacher_heads} heads, conv {conv_channels(args, teacher)} channels"
    )
    if teacher == "ctc":
        state = _json(work / "ctc" / "teacher" / "trainer_state.json")
        test = _json(work / "ctc" / "teacher-test" / "eval_results.json")
        info = {
            "description": f"{shape}, trained from random weights with character CTC (supervised)",
            "dev_cer_curve": [
                [entry["step"], entry["eval_cer"]] for entry in state.get("log_history", []) if "eval_cer" in entry
            ],
            "best_dev_cer": state.get("best_metric"),
            "steps": state.get("global_step"),
            "own_head_test_cer": test.get("eval_cer"),
            "own_head_test_wer": test.get("eval_wer"),
        }
        if test:
            info["summary"] = (
                f"Its own CTC head on test: CER {test['eval_cer']:.3f}, WER {test['eval_wer']:.3f}; "
                f"best dev CER {info['best_dev_cer']} after {info['steps']} steps."
            )
        info["wall_seconds"] = stages["ctc-teacher"].wall_seconds if "ctc-teacher" in stages else None
        return info
    iterations = []
    for iteration, model in ((1, "hubert-it1"), (2, "teacher")):
        manifest = _json(work / "ssl" / f"targets-it{iteration}" / "kmeans.json")
        state = _json(work / "ssl" / model / "trainer_state.json")
        iterations.append(
            {
                "targets": manifest.get("features"),
                "layer": manifest.get("layer"),
                "clusters": manifest.get("num_clusters"),
                "clusters_used": manifest.get("clusters_used"),
                "steps": state.get("global_step"),
                "loss_curve": [
                    [entry["step"], round(entry["loss"], 4)]
                    for entry in state.get("log_history", [])
                    if "loss" in entry
                ],
                "masked_accuracy_curve": [
                    [entry["step"], round(entry["masked_accuracy"], 4)]
                    for entry in state.get("log_history", [])
                    if "masked_accuracy" in entry
                ],
            }
        )
    first, second = iterations
    start = "random weights" if args.ssl_iteration2_start == "random" else "iteration 1's encoder"
    loss = "masked-prediction loss"
    if args.ssl_unmasked_weight:
        loss = f"loss (masked + {args.ssl_unmasked_weight:g} x unmasked frames' cross-entropy)"

    def spans(curve: str) -> str:
        return f"{_curve_span(first[curve])} (iteration 1), {_curve_span(second[curve])} (iteration 2)"

    return {
        "description": f"{shape}, self-supervised (HuBERT masked prediction, two iterations)",
        "summary": (
            f"Iteration 1: {first['clusters']} k-means clusters of MFCC, {first['steps']} steps; iteration "
            f"2: {second['clusters']} clusters of iteration 1's hidden states {args.ssl_layer}, "
            f"{second['steps']} steps from {start}; {loss} {spans('loss_curve')}; "
            f"masked accuracy {spans('masked_accuracy_curve')}."
        ),
        "iterations": iterations,
        "wall_seconds": sum(
            stages[name].wall_seconds or 0
            for name in (stage.name for stage in ssl_teacher_stages(args, work, work / "logs"))
            if name in stages
        ),
    }


def _curve_span(curve: list) -> str:
    """First -> last value of a logged [step, value] curve."""
    return f"{curve[0][1]:.3f} -> {curve[-1][1]:.3f}" if curve else "-"


def run_all(args: ReplicationArguments) -> dict:
    work = Path(args.work_dir)
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_start = " ".join(f"{value:.2f}" for value in os.getloadavg())
    began = time.perf_counter()
    serial, chains = build_plan(args)
    all_stages, failures, not_run = [], [], []

    def run(stage: Stage) -> Stage:
        all_stages.append(stage)
        if args.collect_only and not stage.done():
            raise MissingStage(stage.name)
        return stage.run(args.fresh, args.in_process)

    for stage in serial:
        run(stage)

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

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        finished = list(pool.map(lambda item: (*item[:3], chain(item[3])), chains))
    load_end = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "settings": asdict(args),
        "corpus": corpus_description(args),
        "teachers": collect(args, work, finished, {stage.name: stage for stage in all_stages}),
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


def corpus_description(args) -> str:
    manifest = _json(Path(args.corpus_dir) / "manifest.json")
    splits = ", ".join(
        f"{split} {info['utterances']} utterances / {info['hours']:.2f} h / {len(info['speakers'])} voices"
        for split, info in manifest.get("splits", {}).items()
    )
    return (
        splits + " (espeak-ng; dev and test sentences and voices never in train; sid-test: new sentences of the "
        "training voices)"
    )


def collect(args, work: Path, finished: list[tuple], stages: dict) -> dict:
    """One table per teacher: rows with a spread per metric (over seeds), parameters and distillation losses."""
    probes, distills = {}, {}
    for owners, key, seed, done in finished:
        for stage in done:
            task = next((task for task in TASKS if f"probe-{task}-" in stage.name), None)
            for owner in owners:
                if task is not None:
                    probes.setdefault((owner, key), {}).setdefault(task, []).append(probe_result(stage, task))
                elif not stage.name.endswith("teacher-test"):
                    distills.setdefault((owner, key), []).append(stage)
    recipes = students(args)
    colours = {"alhubert-2x12": "tab:blue", "distilhubert-2": "tab:orange", "alhubert-3x12": "tab:purple"}
    tables = {}
    for teacher in args.teachers:
        folder = work / teacher
        rows = [
            {
                "key": "teacher-as-alhubert",
                "short": "teacher",
                "role": "ceiling",
                "label": f"Teacher {teacher} ({args.teacher_layers}-layer HuBERT-shaped)",
                "encoder": str(folder / "teacher-as-alhubert"),
            }
        ]
        for student in recipes:
            rows.append(
                {
                    "key": student.name,
                    "label": student.label,
                    "short": student.name,
                    "role": "student",
                    "encoder": str(folder / f"{student.name}-seed0"),
                    "colour": colours[student.name],
                    "loss_type": f"{student.loss_type} + cosine",
                    "targets": [f"{s}->{t}" for s, t in zip(student.student_layers, student.teacher_layers)],
                }
            )
        rows.append(
            {
                "key": "floor-teacher-init",
                "short": "2x12 teacher-init, not distilled",
                "role": "floor",
                "label": f"ALHuBERT 2 x {args.teacher_layers}, initialised from the teacher, not distilled",
                "encoder": str(folder / "floor-teacher-init"),
            }
        )
        rows.append(
            {
                "key": "floor-random",
                "short": "2x12 random",
                "role": "floor",
                "label": f"ALHuBERT 2 x {args.teacher_layers}, random weights",
                "encoder": str(random_floor_folder(args, work, teacher)),
            }
        )
        rows.append(
            {
                "key": "mfcc",
                "short": "MFCC, no encoder",
                "role": "baseline",
                "label": "MFCC (13 + deltas + delta-deltas, 39-dim) at the 20 ms frames: the iteration-1 input "
                "features, no encoder",
                "encoder": None,
            }
        )
        rows = [row for row in rows if (teacher, row["key"]) in probes]  # rows whose probes all failed are left out
        for row in rows:
            for task, runs in probes[(teacher, row["key"])].items():
                for name, _ in METRICS[task]:
                    row[name] = spread([run[name] for run in runs])
                row[f"{task}_runs"] = runs
            row["encoder_parameters"] = encoder_parameters(Path(row["encoder"])) if row["encoder"] else 0
            if (teacher, row["key"]) in distills:
                curves = [loss_curve(stage.output_dir) for stage in distills[(teacher, row["key"])]]
                row["loss_curves"] = curves
                row["final_distillation_loss"] = spread([curve[-1][1] for curve in curves if curve])
                row["distill_wall_seconds"] = [stage.wall_seconds for stage in distills[(teacher, row["key"])]]
        tables[teacher] = {
            **teacher_summary(args, work, teacher, stages),
            "rows": rows,
            "beats_random_floor": beats_baseline(rows, "floor-random"),
            "beats_mfcc": beats_baseline(rows, "mfcc"),
        }
    return tables


def beats_baseline(rows: list[dict], baseline: str) -> dict:
    """Per metric, whether the teacher's mean is better than that of the row `baseline` (`floor-random`, `mfcc`: the
    pre-training sanity checks)."""
    by_key = {row["key"]: row for row in rows}
    teacher, floor = by_key.get("teacher-as-alhubert"), by_key.get(baseline)
    if teacher is None or floor is None:
        return {}
    higher_is_better = {"sid_accuracy"}
    return {
        metric: (teacher[metric]["mean"] > floor[metric]["mean"]) == (metric in higher_is_better)
        for metric in COLUMNS
        if metric in teacher and metric in floor and teacher[metric]["mean"] != floor[metric]["mean"]
    }


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(ReplicationArguments).parse_args_into_dataclasses(args=argv)
    if args.plan:
        return {"estimated_wall_seconds": print_plan(args, *build_plan(args))}
    if args.in_process:
        import torch

        torch.set_num_threads(1)  # as the subprocesses run
    try:
        results = run_all(args)
    except MissingStage as missing:
        sys.exit(
            f"error: --collect_only: the stage {missing} has not finished in {args.work_dir}; run "
            "`python benchmarks/replication.py` first (finished stages are reused)."
        )
    results_dir = Path(args.results_dir)
    write_results(results, results_dir)
    logger.info("Wrote %s/replication.{md,json,png} in %.1f min", results_dir, results["wall_seconds"] / 60)
    print(markdown(results))
    if results["failures"]:
        sys.exit(f"{len(results['failures'])} stage(s) failed: " + "; ".join(results["failures"]))
    return results


if __name__ == "__main__":
    main()
