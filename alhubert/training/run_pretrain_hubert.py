# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""`alhubert pretrain-hubert`: pre-train a HuBERT encoder on k-means targets (`alhubert kmeans-targets`).

    alhubert pretrain-hubert --model_preset demo --labels_dir outputs/targets-mfcc \
        --librispeech_root data/demo_corpus --librispeech_sets train-clean-demo \
        --output_dir outputs/hubert-it1 --max_steps 2000 --per_device_train_batch_size 8 --learning_rate 5e-4
    accelerate launch scripts/pretrain_hubert.py ...        # one or several processes / GPUs

A `transformers.Trainer` run of `HubertForPreTraining` (masked prediction of the cluster ids, see
`alhubert.training.hubert_pretraining`), with the arguments, output-folder policy, resume (`--resume_from_checkpoint
last`), logging and data options of `alhubert distill`. The encoder starts from --model_name_or_path (a HubertModel
folder, e.g. from `scripts/make_hubert.py`) or from random weights of a --model_preset shape (`tiny`: the
replication's 12 x 128 teacher, `demo`, `base`: HuBERT Base). Clips are never cropped (the labels are per frame):
longer ones than --max_length_samples are dropped.

The output folder is a plain `HubertModel` folder (config.json, model.safetensors, preprocessor_config.json) that
`HubertModel.from_pretrained`, `AutoModel` and `alhubert distill --teacher_name_or_path` load as it is; the head
(projection and label embeddings) is kept apart in `pretraining_head/`.
"""

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# Only what the argument parser needs is imported here, so that --help is quick; the rest is imported in main().
from transformers import TrainingArguments

from alhubert.training.arguments import DataArguments, OutputArguments
from alhubert.training.commands import parse_command, run_command, setup_errors, start_run


if TYPE_CHECKING:
    from transformers import Trainer, Wav2Vec2FeatureExtractor

    from alhubert.training.hubert_pretraining import HubertForPreTraining


logger = logging.getLogger(__name__)
PRESETS = ("tiny", "demo", "base")


@dataclass
class PretrainingArguments:
    """The encoder to pre-train, its targets, and HuBERT's head and loss."""

    labels_dir: str = field(metadata={"help": "Targets written by `alhubert kmeans-targets` (labels.jsonl, ...)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A HubertModel folder to start from (default: random --model_preset)."}
    )
    model_preset: str = field(
        default="tiny",
        metadata={
            "help": "Shape of a random encoder: tiny (12 x 128), demo (4 x 32) or base (HuBERT Base).",
            "choices": PRESETS,
        },
    )
    final_dim: int = field(default=256, metadata={"help": "Width of the projection and the label embeddings."})
    logit_temperature: float = field(default=0.1, metadata={"help": "Cosine similarities are divided by this."})
    mask_prob: float = field(default=0.8, metadata={"help": "Share of frames that start a masked span (HuBERT: 0.8)."})
    mask_length: int = field(default=10, metadata={"help": "Frames per masked span (HuBERT: 10)."})
    masked_weight: float = field(default=1.0, metadata={"help": "Weight of the cross-entropy on masked frames."})
    unmasked_weight: float = field(default=0.0, metadata={"help": "Weight of the cross-entropy on unmasked frames."})
    feature_grad_mult: float = field(
        default=1.0, metadata={"help": "Scale of the conv feature encoder's gradient (HuBERT: 0.1)."}
    )
    layerdrop: float | None = field(
        default=None,
        metadata={
            "help": "Probability of skipping a layer in training (default: the config's; a multi-process run needs 0)."
        },
    )


@dataclass
class PretrainingDataArguments(DataArguments):
    """`DataArguments` whose long clips are dropped, not cropped: the labels belong to the whole clip."""

    max_length_samples: int | None = field(
        default=16000 * 20,
        metadata={
            "help": "Training clips longer than this many samples (16 kHz) are dropped (never cropped); 0 keeps all."
        },
    )


def parse_arguments(argv: list[str] | None = None) -> tuple:
    return parse_command(
        (PretrainingArguments, PretrainingDataArguments, TrainingArguments, OutputArguments),
        prog="alhubert pretrain-hubert",
        usage="alhubert pretrain-hubert [CONFIG.yaml] --labels_dir L --output_dir O [--model_preset tiny | "
        "--model_name_or_path M] ...",
        argv=argv,
    )


def build_model(
    args: PretrainingArguments, num_clusters: int
) -> tuple["HubertForPreTraining", "Wav2Vec2FeatureExtractor"]:
    """`HubertForPreTraining` over the starting encoder, and the encoder's feature extractor."""
    from transformers import AutoFeatureExtractor, HubertModel, Wav2Vec2FeatureExtractor

    from alhubert.training.hubert_pretraining import HubertForPreTraining, PretrainingHeadConfig, hubert_config

    head = PretrainingHeadConfig(
        num_classes=[num_clusters],
        final_dim=args.final_dim,
        logit_temperature=args.logit_temperature,
        mask_prob=args.mask_prob,
        mask_length=args.mask_length,
        masked_weight=args.masked_weight,
        unmasked_weight=args.unmasked_weight,
        feature_grad_mult=args.feature_grad_mult,
    )
    overrides = {} if args.layerdrop is None else {"layerdrop": args.layerdrop}
    if args.model_name_or_path is None:
        config = hubert_config(args.model_preset, **overrides)
        model = HubertForPreTraining(config, head)
        # HuBERT Base is fed unnormalised audio without attention masks; the pre-LN presets normalise, with masks.
        feature_extractor = Wav2Vec2FeatureExtractor(
            do_normalize=config.do_stable_layer_norm, return_attention_mask=config.do_stable_layer_norm
        )
        return model, feature_extractor
    encoder = HubertModel.from_pretrained(args.model_name_or_path, **overrides)
    model = HubertForPreTraining(encoder.config, head)
    model.hubert = encoder
    feature_extractor = AutoFeatureExtractor.from_pretrained(args.model_name_or_path)
    return model, feature_extractor


def main(argv: list[str] | None = None) -> "Trainer":
    with setup_errors():  # set-up problems (arguments, output folder, labels, data) are one line from `cli`
        args, data_args, training_args, output_args = parse_arguments(argv)
        import os

        from alhubert.models.configuration_alhubert import receptive_field
        from alhubert.training.data import AudioCollator, SkippedAudioCallback, load_train_eval_datasets
        from alhubert.training.hubert_pretraining import HEAD_DIR, PretrainingTrainer
        from alhubert.training.kmeans_targets import attach_labels, read_labels

        resume_from = start_run(training_args, output_args, logger)
        training_args.remove_unused_columns = False  # AudioCollator decodes the "audio" column
        labels, manifest = read_labels(args.labels_dir)
        num_clusters = manifest["num_clusters"]
        model, feature_extractor = build_model(args, num_clusters)
        with training_args.main_process_first(desc="loading the audio and labels"):
            train_dataset, eval_dataset = load_train_eval_datasets(data_args, seed=training_args.seed)
            train_dataset = attach_labels(train_dataset, labels, model.config, num_clusters, "train")
            if data_args.max_length_samples:  # long clips are dropped, never cropped
                limit = data_args.max_length_samples
                train_dataset = train_dataset.filter(lambda length: length <= limit, input_columns="length")
            if eval_dataset is not None:
                eval_dataset = attach_labels(eval_dataset, labels, model.config, num_clusters, "eval")
    logger.info("Targets: %s k-means (%d clusters) from %s", manifest["features"], num_clusters, args.labels_dir)
    collator = AudioCollator(
        feature_extractor, max_length_samples=None, min_length_samples=receptive_field(model.config)
    )
    trainer = PretrainingTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=feature_extractor,
        callbacks=[SkippedAudioCallback(collator)],
    )
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    if training_args.should_save:  # the plain HubertModel and its feature extractor; the head in `pretraining_head/`
        trained = trainer.accelerator.unwrap_model(trainer.model)
        trained.hubert.save_pretrained(training_args.output_dir)
        feature_extractor.save_pretrained(training_args.output_dir)
        trained.save_head(os.path.join(training_args.output_dir, HEAD_DIR))
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()
    if eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    return trainer


def cli(argv: list[str] | None = None) -> "Trainer":
    """`main` for the command line: set-up problems are one `error: ...` line (`alhubert.training.commands`)."""
    return run_command(main, argv)


if __name__ == "__main__":
    cli()
