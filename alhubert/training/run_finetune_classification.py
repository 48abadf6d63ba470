# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune `AlHubertForSequenceClassification` for an utterance-level task (keyword spotting, speaker or emotion
recognition) and report accuracy.

Data: any `datasets` dataset with an audio and a label column (`--dataset_name`, `--label_column_name`), or an
audiofolder with one sub-folder per label (`--audiofolder path`, labels from the folder names):

    alhubert finetune-classification --model_name_or_path path/to/student --audiofolder data/commands \
        --validation_split_percentage 10 --output_dir outputs/kws --do_train --do_eval --num_train_epochs 5

The output folder holds the model (with `id2label`) and its feature extractor, ready for
`pipeline("audio-classification", model=output_dir)`. Arguments may also come from one YAML or JSON file.
"""

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# Only what the argument parser needs is imported here, so that --help is quick; the rest is imported where used.
from transformers import TrainingArguments

from alhubert.training.arguments import DataArguments, EncoderArguments, OutputArguments
from alhubert.training.commands import parse_command, run_command, setup_errors, start_run


if TYPE_CHECKING:
    from datasets import Dataset, IterableDataset
    from transformers import EvalPrediction, Trainer


logger = logging.getLogger(__name__)


@dataclass
class ModelArguments(EncoderArguments):
    """Which pre-trained encoder to start from and how to fine-tune it."""

    freeze_base_model: bool = field(
        default=False, metadata={"help": "Train only the pooling head (and layer weights); keep the encoder frozen."}
    )
    use_weighted_layer_sum: bool = field(
        default=False, metadata={"help": "Pool a learnable softmax-weighted sum of all hidden states (SUPERB style)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.upstream == "mfcc" and not self.freeze_base_model:
            raise ValueError(
                "--upstream mfcc needs --freeze_base_model true (a frozen upstream: there is no encoder to fine-tune)."
            )


@dataclass
class ClassificationDataArguments(DataArguments):
    """`DataArguments` plus the label column."""

    label_column_name: str = field(
        default="label", metadata={"help": "Column with the class of each clip (audiofolder: the folder names)."}
    )


def encode_labels(
    train_dataset: "Dataset | IterableDataset", eval_dataset: "Dataset | IterableDataset | None"
) -> tuple["Dataset | IterableDataset", "Dataset | IterableDataset | None", list[str]]:
    """Map labels to ids (string labels are class-encoded); returns the datasets and the label names."""
    from datasets import ClassLabel, IterableDataset, Value

    if isinstance(train_dataset, IterableDataset):
        feature = train_dataset.features["label"] if train_dataset.features else None
        if not isinstance(feature, ClassLabel):
            raise ValueError("A streamed dataset needs a ClassLabel label column; stream off or cast it first.")
        return train_dataset, eval_dataset, feature.names
    feature = train_dataset.features["label"]
    if isinstance(feature, ClassLabel):
        return train_dataset, eval_dataset, feature.names
    # Plain values (strings or numbers) become class names; numbers go through strings so "7" is a name, not an index.
    splits = [split.cast_column("label", Value("string")) for split in (train_dataset, eval_dataset) if split]
    feature = ClassLabel(names=sorted(set().union(*(split["label"] for split in splits))))
    train_dataset, *rest = [split.cast_column("label", feature) for split in splits]
    return train_dataset, (rest[0] if rest else None), feature.names


def compute_accuracy(prediction: "EvalPrediction") -> dict[str, float]:
    import numpy as np

    from alhubert.training.metrics import accuracy

    return accuracy(predictions=np.argmax(prediction.predictions, axis=-1), references=prediction.label_ids)


def with_labels(example: dict[str, Any]) -> dict[str, Any]:
    return {"labels": example["label"]}


def parse_arguments(argv: list[str] | None = None) -> tuple:
    return parse_command(
        (ModelArguments, ClassificationDataArguments, TrainingArguments, OutputArguments),
        prog="alhubert finetune-classification",
        usage="alhubert finetune-classification [CONFIG.yaml] --model_name_or_path M --output_dir O "
        "(--do_train | --do_eval) ...",
        argv=argv,
    )


def main(argv: list[str] | None = None) -> "Trainer":
    with setup_errors():  # set-up problems (arguments, output folder, data, model) are one line from `cli`
        model_args, data_args, training_args, output_args = parse_arguments(argv)
        if not (training_args.do_train or training_args.do_eval):
            raise ValueError("Nothing to do: pass --do_train and/or --do_eval.")
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

        from alhubert.models.configuration_alhubert import receptive_field
        from alhubert.training.card_trainer import AlHubertTrainer, train_evaluate_and_publish
        from alhubert.training.data import AudioCollator, SkippedAudioCallback, load_train_eval_datasets

        checkpoint = start_run(training_args, output_args, logger, trains=training_args.do_train)
        training_args.remove_unused_columns = False  # AudioCollator decodes the "audio" column

        with training_args.main_process_first(desc="dataset preprocessing"):
            train_dataset, eval_dataset = load_train_eval_datasets(
                data_args, label_column=data_args.label_column_name, seed=training_args.seed
            )
            train_dataset, eval_dataset, label_names = encode_labels(train_dataset, eval_dataset)
            train_dataset = train_dataset.map(with_labels)
            if eval_dataset is not None:
                eval_dataset = eval_dataset.map(with_labels)
        logger.info(f"{len(label_names)} classes: {label_names}")
        if training_args.do_eval and eval_dataset is None:
            raise ValueError("--do_eval needs evaluation data: --eval_split_name or --validation_split_percentage.")

        feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
        head_settings = {
            "num_labels": len(label_names),
            "id2label": dict(enumerate(label_names)),
            "label2id": {name: index for index, name in enumerate(label_names)},
            "use_weighted_layer_sum": model_args.use_weighted_layer_sum,
        }
        if model_args.upstream == "mfcc":
            from alhubert.training.mfcc_upstream import MFCC_SHAPE, with_mfcc_upstream

            feature_extractor.do_normalize = False  # MFCC of the audio as it is, as `kmeans-targets` computes them
            config = AutoConfig.from_pretrained(model_args.model_name_or_path, **MFCC_SHAPE, **head_settings)
            model = with_mfcc_upstream(AutoModelForAudioClassification.from_config(config))
        else:
            model = AutoModelForAudioClassification.from_pretrained(model_args.model_name_or_path, **head_settings)
        if model_args.freeze_base_model:
            model.freeze_base_model()
        elif model_args.freeze_feature_encoder:
            model.freeze_feature_encoder()

        collator = AudioCollator(
            feature_extractor,
            max_length_samples=data_args.max_length_samples,
            min_length_samples=receptive_field(model.config),  # also for a HuBERT-like starting model
        )
        trainer = AlHubertTrainer(
            model=model,
            args=training_args,
            train_dataset=train_dataset if training_args.do_train else None,
            eval_dataset=eval_dataset,
            data_collator=collator,
            processing_class=feature_extractor,
            compute_metrics=compute_accuracy,
            callbacks=[SkippedAudioCallback(collator)],
        )
    train_evaluate_and_publish(
        trainer, collator, checkpoint, model_args.model_name_or_path, data_args, task="audio-classification"
    )
    return trainer


def cli(argv: list[str] | None = None) -> "Trainer":
    """`main` for the command line: set-up problems are one `error: ...` line (`alhubert.training.commands`)."""
    return run_command(main, argv)


if __name__ == "__main__":
    cli()
