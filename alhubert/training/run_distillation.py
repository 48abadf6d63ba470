# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Distil a HuBERT teacher into an ALHuBERT student (DistilALHuBERT).

    alhubert distill small --librispeech_root /data/LibriSpeech    # a shipped recipe (small, middle, large, demo)
    alhubert distill my_recipe.yaml --max_steps 20                 # one YAML or JSON file, flags override it
    accelerate launch scripts/distill.py small ...                 # one or several processes / GPUs
    alhubert distill --librispeech_root /data/LibriSpeech --output_dir out --max_steps 200000 ...

The final student is saved in --output_dir as a complete model directory (weights, feature extractor, remote code
and a model card with the recipe and the final losses); --push_to_hub uploads it.
"""

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# Only what the argument parser needs is imported here, so that --help is quick; the rest is imported in main().
from alhubert.models.configuration_alhubert import PRESETS
from alhubert.training.arguments import DataArguments, DistillationConfig, OutputArguments
from alhubert.training.commands import parse_command, run_command, setup_errors, start_run


if TYPE_CHECKING:
    import torch
    from transformers import FeatureExtractionMixin, PreTrainedModel

    from alhubert.models.modeling_alhubert import AlHubertModel
    from alhubert.training.distillation import DistillationTrainer


logger = logging.getLogger(__name__)

DEMO_TEACHER = "demo-random-teacher"


@dataclass
class ModelArguments:
    """The teacher, and the shape and initialisation of the student."""

    teacher_name_or_path: str = field(
        default="facebook/hubert-base-ls960",
        metadata={
            "help": "Teacher model (Hub id or local directory) returning hidden_states, e.g. a HubertModel. "
            f"'{DEMO_TEACHER}' builds the tiny random-weight demo teacher locally."
        },
    )
    teacher_dtype: str = field(
        default="auto",
        metadata={
            "help": "Precision of the frozen teacher: 'auto' (bfloat16 on a GPU that supports it, else "
            "float32), 'float32', 'bfloat16' or 'float16'.",
            "choices": ["auto", "float32", "bfloat16", "float16"],
        },
    )
    student_preset: str | None = field(
        default="small",
        metadata={
            "help": "Released student shape giving the number of distinct layers and applications: "
            f"{', '.join(PRESETS)}. --num_hidden_groups / --num_hidden_layers override it.",
            "choices": [*PRESETS, None],
        },
    )
    num_hidden_groups: int | None = field(default=None, metadata={"help": "Number of distinct student layers."})
    num_hidden_layers: int | None = field(default=None, metadata={"help": "Number of student layer applications."})
    layer_sharing: str = field(
        default="cycle",
        metadata={
            "help": "Order of the shared layers: 'cycle' (L0 L1 L0 L1, the original) or 'block' (L0 L0 L1 L1).",
            "choices": ["cycle", "block"],
        },
    )
    init_from_teacher: bool = field(
        default=True,
        metadata={
            "help": "Copy the teacher's feature encoder, projection, positional convolution and first "
            "layers into the student (the recipe). False: random student with the teacher's sizes."
        },
    )
    do_normalize: bool | None = field(
        default=None,
        metadata={
            "help": "Normalise each input waveform to zero mean and unit variance (teacher and student see "
            "the same input). Default: as the teacher's feature extractor does."
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded (or demo) teachers are stored."})


def parse_arguments(
    argv: list[str] | None = None,
) -> tuple["ModelArguments", DataArguments, DistillationConfig, OutputArguments]:
    """Parse `[CONFIG] [--flags]` (see `alhubert.training.arguments`) into the four argument groups."""
    return parse_command(
        (ModelArguments, DataArguments, DistillationConfig, OutputArguments),
        prog="alhubert distill",
        usage="alhubert distill [CONFIG] [--flags]  (CONFIG: small, middle, large, demo or a YAML/JSON file)",
        argv=argv,
    )


def resolve_teacher_dtype(name: str) -> "torch.dtype":
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def load_teacher(model_args: ModelArguments) -> tuple["PreTrainedModel", "FeatureExtractionMixin"]:
    """The frozen teacher and its feature extractor (the default 16 kHz one when it ships none)."""
    from transformers import AutoFeatureExtractor, AutoModel, Wav2Vec2FeatureExtractor

    from alhubert.training.demo_teacher import demo_teacher_path

    path = model_args.teacher_name_or_path
    if path == DEMO_TEACHER:
        path = demo_teacher_path(model_args.cache_dir)
    teacher = AutoModel.from_pretrained(path, cache_dir=model_args.cache_dir)
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(path, cache_dir=model_args.cache_dir)
    except OSError:
        logger.warning(f"{path} has no feature extractor; assuming 16 kHz input without normalisation.")
        feature_extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    return teacher, feature_extractor


def build_student(
    model_args: ModelArguments, teacher: "PreTrainedModel", teacher_feature_extractor: "FeatureExtractionMixin"
) -> "AlHubertModel":
    """The student: the preset's (or given) layer counts with the teacher's dimensions."""
    from alhubert import AlHubertModel
    from alhubert.training.student_init import init_student_from_teacher, student_config_from_teacher

    preset = PRESETS[model_args.student_preset] if model_args.student_preset else {}
    num_hidden_groups = model_args.num_hidden_groups or preset.get("num_hidden_groups")
    num_hidden_layers = model_args.num_hidden_layers or preset.get("num_hidden_layers")
    if num_hidden_groups is None:
        raise ValueError("Give --student_preset or --num_hidden_groups (the number of distinct student layers).")
    do_normalize = model_args.do_normalize
    if do_normalize is None:
        do_normalize = bool(getattr(teacher_feature_extractor, "do_normalize", False))
    if model_args.init_from_teacher:
        return init_student_from_teacher(
            teacher, num_hidden_groups, num_hidden_layers, model_args.layer_sharing, do_normalize=do_normalize
        )
    config = student_config_from_teacher(
        teacher.config, num_hidden_groups, num_hidden_layers, model_args.layer_sharing, do_normalize=do_normalize
    )
    return AlHubertModel(config)


def _value(option) -> str:
    return str(getattr(option, "value", option))


def describe_recipe(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: DistillationConfig,
    student: "AlHubertModel",
    teacher_dtype: "torch.dtype",
) -> dict:
    """The settings of this run, for the model card."""
    from alhubert.training.data import describe_data

    config = student.config
    world = training_args.world_size * training_args.gradient_accumulation_steps
    return {
        "Teacher": (
            "a tiny HuBERT-shaped teacher with RANDOM weights (demo only)"
            if model_args.teacher_name_or_path == DEMO_TEACHER
            else model_args.teacher_name_or_path
        )
        + f" ({str(teacher_dtype).replace('torch.', '')}), frozen",
        "Student": f"{config.num_hidden_groups} distinct layers x {config.num_hidden_layers} applications "
        f"({config.layer_sharing})",
        "Student initialisation": "from the teacher" if model_args.init_from_teacher else "random",
        "Targets (student -> teacher hidden_states)": ", ".join(
            f"{s}->{t}" for s, t in zip(training_args.student_layers, training_args.teacher_layers)
        ),
        "Loss per target": f"{training_args.loss_type} + {training_args.cosine_weight} x cosine, summed over "
        f"targets; padded frames {'excluded' if training_args.mask_padding else 'included'}",
        "Data": describe_data(data_args)[0],
        "Crop": f"at most {data_args.max_length_samples} samples",
        "Batch size": f"{training_args.per_device_train_batch_size} x {world} (devices x accumulation)",
        "Optimiser": f"{_value(training_args.optim)}, lr {training_args.learning_rate}, betas "
        f"({training_args.adam_beta1}, {training_args.adam_beta2}), eps {training_args.adam_epsilon}, "
        f"weight decay {training_args.weight_decay}",
        "Schedule": f"{_value(training_args.lr_scheduler_type)}, warm-up {training_args.warmup_steps}",
        "Gradient clipping": training_args.max_grad_norm,
        "Feature encoder gradient scale": training_args.feature_grad_mult,
    }


def final_results(trainer: "DistillationTrainer") -> dict:
    """Steps, first and last logged training losses and per-target terms, and the last evaluation loss."""
    history = trainer.state.log_history
    train_logs = [entry for entry in history if "loss" in entry]
    results = {"Optimizer steps": trainer.state.global_step}
    if train_logs:
        results[f"Training loss at step {train_logs[0]['step']}"] = round(train_logs[0]["loss"], 4)
        last = train_logs[-1]
        results[f"Training loss at step {last['step']}"] = round(last["loss"], 4)
        for key, value in last.items():
            if key.startswith(("rec_", "sim_")):
                results[f"{key} at step {last['step']}"] = round(value, 4)
    eval_logs = [entry for entry in history if "eval_loss" in entry]
    if eval_logs:
        results[f"Evaluation loss at step {eval_logs[-1]['step']}"] = round(eval_logs[-1]["eval_loss"], 4)
    return results


def main(argv: list[str] | None = None) -> "DistillationTrainer":
    with setup_errors():  # set-up problems (arguments, output folder, data, teacher, targets) are one line from `cli`
        model_args, data_args, training_args, output_args = parse_arguments(argv)
        import datasets

        from alhubert import default_feature_extractor
        from alhubert.hub.model_cards import write_model_card
        from alhubert.training.data import AudioCollator, SkippedAudioCallback, describe_data, load_train_eval_datasets
        from alhubert.training.distillation import DistillationTrainer

        resume_from = start_run(training_args, output_args, logger)
        # local inputs first: a missing corpus is reported before the teacher is looked for (on the Hub)
        with training_args.main_process_first(desc="loading the audio data"):
            train_dataset, eval_dataset = load_train_eval_datasets(data_args, seed=training_args.seed)
        with training_args.main_process_first(desc="loading the teacher"):
            teacher, teacher_feature_extractor = load_teacher(model_args)
        student = build_student(model_args, teacher, teacher_feature_extractor)
        feature_extractor = default_feature_extractor(student.config)
        feature_extractor.sampling_rate = teacher_feature_extractor.sampling_rate
        collator = AudioCollator(
            feature_extractor,
            max_length_samples=data_args.max_length_samples,
            min_length_samples=student.config.receptive_field,
            # an all-unreadable batch (e.g. one bad file at batch size 1) draws random training rows instead
            redraw_from=train_dataset if isinstance(train_dataset, datasets.Dataset) else None,
        )
        teacher_dtype = resolve_teacher_dtype(model_args.teacher_dtype)
        trainer = DistillationTrainer(
            model=student,
            args=training_args,
            teacher=teacher,
            teacher_dtype=teacher_dtype,
            teacher_feature_extractor=teacher_feature_extractor,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            data_collator=collator,
            processing_class=feature_extractor,
            callbacks=[SkippedAudioCallback(collator)],
        )

    train_result = trainer.train(resume_from_checkpoint=resume_from)
    train_result.metrics["skipped_audio_files"] = collator.num_skipped  # this process's count (all its workers)
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()
    if eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    if trainer.is_world_process_zero():
        write_model_card(
            training_args.output_dir,
            student.config,
            model_id=training_args.hub_model_id,
            recipe=describe_recipe(model_args, data_args, training_args, student, teacher_dtype),
            results=final_results(trainer),
            base_model=model_args.teacher_name_or_path,  # kept in the metadata only when it is a Hub id
            datasets=describe_data(data_args)[1],
            training_data=describe_data(data_args)[0],
        )
        logger.info(f"Student saved to {training_args.output_dir}")
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return trainer


def cli(argv: list[str] | None = None) -> "DistillationTrainer":
    """`main` for the command line: set-up problems are one `error: ...` line (`alhubert.training.commands`)."""
    return run_command(main, argv)


if __name__ == "__main__":
    cli()
