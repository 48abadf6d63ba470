# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune an ALHuBERT model for English speech recognition with a character CTC output, and evaluate WER/CER.

Two recipes:
- `--recipe full`: a linear CTC head on the encoder; the convolutional feature encoder is frozen and the transformer
  is fine-tuned (the usual Transformers recipe, `AlHubertForCTC`);
- `--recipe superb`: the paper's protocol (`AlHubertSuperbForCTC`): the encoder is frozen, a softmax-weighted sum of
  all its hidden states feeds a 2-layer bidirectional LSTM (1024) and a CTC output; train it with Adam,
  `--learning_rate 1e-4 --weight_decay 0`.

    alhubert finetune-ctc --model_name_or_path path/to/student --recipe full \
        --librispeech_root data/LibriSpeech --librispeech_sets train-clean-100 --eval_librispeech_sets dev-clean \
        --output_dir outputs/asr --per_device_train_batch_size 8 --learning_rate 5e-5 --max_steps 20000 \
        --eval_strategy steps --eval_steps 2000 --train_sampling_strategy group_by_length

The output folder holds the model, its processor (feature extractor + `Wav2Vec2CTCTokenizer`) and metrics, ready for
`pipeline("automatic-speech-recognition", model=output_dir)`. Arguments may also come from one YAML or JSON file.
"""

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# Only what the argument parser needs is imported here, so that --help is quick; the rest is imported where used.
from transformers import TrainingArguments

from alhubert.training.arguments import DataArguments, EncoderArguments, OutputArguments
from alhubert.training.commands import parse_command, run_command, setup_errors, start_run


if TYPE_CHECKING:
    from datasets import Dataset, IterableDataset
    from transformers import EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase, Trainer


logger = logging.getLogger(__name__)
RECIPES = ("full", "superb")


@dataclass
class ModelArguments(EncoderArguments):
    """Which pre-trained encoder to start from and which recipe to fine-tune it with."""

    recipe: str = field(
        default="full",
        metadata={
            "help": "'full': linear CTC head, transformer fine-tuned; 'superb': frozen encoder, weighted layer "
            "sum, BiLSTM head (the paper's protocol).",
            "choices": RECIPES,
        },
    )
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "Full recipe: keep the convolutional feature encoder frozen."}
    )
    mask_time_prob: float = field(
        default=0.05, metadata={"help": "Full recipe: SpecAugment time-masking probability during training."}
    )
    layerdrop: float = field(default=0.0, metadata={"help": "Full recipe: probability of skipping a layer."})
    final_dropout: float = field(default=0.0, metadata={"help": "Full recipe: dropout before the linear CTC head."})
    transcripts: str = field(
        default="characters",
        metadata={
            "help": "'characters': English character CTC (WER, CER); 'phonemes': the text column holds "
            "space-separated phonemes, the vocabulary is the training data's phonemes (phoneme error "
            "rate, 'per').",
            "choices": ("characters", "phonemes"),
        },
    )
    superb_lstm_size: int = field(default=1024, metadata={"help": "Superb recipe: units per LSTM direction."})
    superb_lstm_layers: int = field(default=2, metadata={"help": "Superb recipe: stacked bidirectional LSTM layers."})
    superb_dropout: float = field(default=0.2, metadata={"help": "Superb recipe: dropout in and after the LSTM."})
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop training after this many evaluations without a better --metric_for_best_model "
            "(e.g. cer); needs --load_best_model_at_end, which keeps the best checkpoint."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recipe not in RECIPES:
            raise ValueError(f"--recipe must be one of {RECIPES}, got {self.recipe!r}.")
        if self.upstream == "mfcc" and self.recipe != "superb":
            raise ValueError(
                "--upstream mfcc needs --recipe superb (a frozen upstream: there is no encoder to fine-tune)."
            )


@dataclass
class CTCDataArguments(DataArguments):
    """`DataArguments` with fine-tuning defaults: transcripts cannot be cropped, so long clips are dropped instead."""

    max_length_samples: int | None = field(
        default=16000 * 20,
        metadata={
            "help": "Training clips longer than this many samples (16 kHz) are dropped (never cropped: the "
            "transcript must match the audio); 0 keeps all."
        },
    )
    short_audio: str = field(
        default="error",
        metadata={
            "help": "Clips shorter than --min_length_samples: 'error' (default here, naming the file) or "
            "'drop' them with a warning.",
            "choices": ("drop", "error"),
        },
    )


def parse_arguments(argv: list[str] | None = None) -> tuple:
    return parse_command(
        (ModelArguments, CTCDataArguments, TrainingArguments, OutputArguments),
        prog="alhubert finetune-ctc",
        usage="alhubert finetune-ctc [CONFIG.yaml] --model_name_or_path M --output_dir O (--do_train | --do_eval) ...",
        argv=argv,
    )


def prepare_transcripts(
    dataset: "Dataset | IterableDataset", tokenizer: "PreTrainedTokenizerBase", split: str, phonemes: bool = False
) -> "Dataset | IterableDataset":
    """Normalise transcripts into the vocabulary and tokenize them as `labels`; count dropped characters (phoneme
    transcripts are only tokenized: a phoneme outside the vocabulary becomes `<unk>`)."""
    from datasets import IterableDataset

    from alhubert.training.ctc_vocabulary import normalize_transcript

    def tokenize(example):
        if phonemes:
            text = " ".join(example["text"].split())
            return {"text": text, "labels": tokenizer(text).input_ids, "dropped": ""}
        text, dropped = normalize_transcript(example["text"])
        return {"text": text, "labels": tokenizer(text).input_ids, "dropped": "".join(dropped.elements())}

    if isinstance(dataset, IterableDataset):
        return dataset.map(tokenize).remove_columns("dropped")
    dataset = dataset.map(tokenize, desc=f"Tokenizing {split} transcripts")
    dropped = Counter("".join(dataset["dropped"]))
    if dropped:
        logger.warning(
            f"{split}: dropped {sum(dropped.values())} transcript character(s) outside the vocabulary: "
            + ", ".join(f"{char!r} x{count}" for char, count in dropped.most_common(10))
        )
    return dataset.remove_columns("dropped")


def check_audio_fits_transcripts(dataset: "Dataset | IterableDataset", model: "PreTrainedModel", split: str) -> None:
    """Every clip must yield at least as many CTC frames as its transcript has tokens; else name the file."""
    import torch
    from datasets import IterableDataset

    if isinstance(dataset, IterableDataset) or len(dataset) == 0:
        return
    lengths = torch.tensor(dataset["length"])
    frames = model._get_feat_extract_output_lengths(lengths.clamp(min=0))
    label_lengths = torch.tensor([len(labels) for labels in dataset["labels"]])
    too_short = torch.nonzero((lengths >= 0) & (frames < label_lengths)).flatten()
    if len(too_short):
        index = int(too_short[0])
        raise ValueError(
            f"{split}: {len(too_short)} clip(s) too short for their transcripts, e.g. "
            f"{dataset[index]['audio']['path']} ({int(frames[index])} frames for {int(label_lengths[index])} "
            "characters). Fix or remove them."
        )


def load_model(model_args: ModelArguments, tokenizer: "PreTrainedTokenizerBase") -> "PreTrainedModel":
    """The CTC model of the chosen recipe, encoder weights from `model_name_or_path`, a new head sized to the vocab."""
    from transformers import AutoConfig, AutoModelForCTC

    from alhubert import AlHubertSuperbConfig, AlHubertSuperbForCTC

    ctc_settings = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "ctc_loss_reduction": "mean",
        "ctc_zero_infinity": True,
    }
    if model_args.recipe == "superb":
        upstream_config = AutoConfig.from_pretrained(model_args.model_name_or_path)
        config = AlHubertSuperbConfig.from_upstream(
            upstream_config,
            superb_lstm_size=model_args.superb_lstm_size,
            superb_lstm_layers=model_args.superb_lstm_layers,
            superb_dropout=model_args.superb_dropout,
            **ctc_settings,
        )
        if model_args.upstream == "mfcc":
            from alhubert.training.mfcc_upstream import MFCC_SHAPE, with_mfcc_upstream

            return with_mfcc_upstream(AlHubertSuperbForCTC(AlHubertSuperbConfig.from_upstream(config, **MFCC_SHAPE)))
        return AlHubertSuperbForCTC.from_pretrained(model_args.model_name_or_path, config=config)
    model = AutoModelForCTC.from_pretrained(
        model_args.model_name_or_path,
        mask_time_prob=model_args.mask_time_prob,
        layerdrop=model_args.layerdrop,
        final_dropout=model_args.final_dropout,
        **ctc_settings,
    )
    if model_args.freeze_feature_encoder:
        model.freeze_feature_encoder()
    return model


def make_compute_metrics(
    tokenizer: "PreTrainedTokenizerBase", phonemes: bool = False
) -> Callable[["EvalPrediction"], dict[str, float]]:
    """Greedy-decoded WER and CER (`alhubert.training.metrics.error_rates`); for phoneme transcripts the phoneme error
    rate (`per`: the word error rate over space-separated phonemes)."""
    import numpy as np

    from alhubert.training.metrics import error_rates

    def compute_metrics(prediction):
        predicted_ids = np.where(prediction.predictions < 0, tokenizer.pad_token_id, prediction.predictions)
        label_ids = np.where(prediction.label_ids < 0, tokenizer.pad_token_id, prediction.label_ids)
        predictions = tokenizer.batch_decode(predicted_ids)
        references = tokenizer.batch_decode(label_ids, group_tokens=False)
        rates = error_rates(predictions, references)
        return {"per": rates["wer"]} if phonemes else rates

    return compute_metrics


def main(argv: list[str] | None = None) -> "Trainer":
    with setup_errors():  # set-up problems (arguments, output folder, data, model) are one line from `cli`
        model_args, data_args, training_args, output_args = parse_arguments(argv)
        if not (training_args.do_train or training_args.do_eval):
            raise ValueError("Nothing to do: pass --do_train and/or --do_eval.")
        if model_args.early_stopping_patience is not None and not training_args.load_best_model_at_end:
            raise ValueError(
                "--early_stopping_patience needs --load_best_model_at_end (and --metric_for_best_model, "
                "e.g. cer with --greater_is_better false)."
            )
        from transformers import AutoFeatureExtractor, EarlyStoppingCallback

        from alhubert.models.configuration_alhubert import receptive_field
        from alhubert.training.card_trainer import AlHubertTrainer, train_evaluate_and_publish
        from alhubert.training.ctc_vocabulary import build_phoneme_processor, build_processor
        from alhubert.training.data import AudioCollator, SkippedAudioCallback, load_train_eval_datasets

        checkpoint = start_run(training_args, output_args, logger, trains=training_args.do_train)
        logger.info(f"Training/evaluation parameters {training_args}")
        # The Trainer must keep the undecoded "audio" column: AudioCollator decodes it.
        training_args.remove_unused_columns = False

        feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
        if model_args.upstream == "mfcc":
            feature_extractor.do_normalize = False  # MFCC of the audio as it is, as `kmeans-targets` computes them
        phonemes = model_args.transcripts == "phonemes"
        with training_args.main_process_first(desc="dataset preprocessing"):
            train_dataset, eval_dataset = load_train_eval_datasets(
                data_args, require_text=True, seed=training_args.seed
            )
            if phonemes:
                processor = build_phoneme_processor(feature_extractor, train_dataset["text"])
            else:
                processor = build_processor(feature_extractor)
            tokenizer = processor.tokenizer
            train_dataset = prepare_transcripts(train_dataset, tokenizer, "train", phonemes)
            if data_args.max_length_samples:
                limit = data_args.max_length_samples
                train_dataset = train_dataset.filter(lambda example: example["length"] <= limit)
            if eval_dataset is not None:
                eval_dataset = prepare_transcripts(eval_dataset, tokenizer, "eval", phonemes)

        if training_args.do_eval and eval_dataset is None:
            raise ValueError(
                "--do_eval needs evaluation data: --eval_librispeech_sets, --eval_split_name or "
                "--validation_split_percentage."
            )
        model = load_model(model_args, tokenizer)
        check_audio_fits_transcripts(train_dataset, model, "train")
        if eval_dataset is not None:
            check_audio_fits_transcripts(eval_dataset, model, "eval")

        collator = AudioCollator(
            # receptive_field(config) works for transformers' HuBERT/wav2vec 2.0 configs too (e.g. a HubertForCTC)
            feature_extractor,
            max_length_samples=None,
            min_length_samples=receptive_field(model.config),
        )
        callbacks = [SkippedAudioCallback(collator)]
        if model_args.early_stopping_patience is not None:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=model_args.early_stopping_patience))
        trainer = AlHubertTrainer(
            model=model,
            args=training_args,
            train_dataset=train_dataset if training_args.do_train else None,
            eval_dataset=eval_dataset,
            data_collator=collator,
            processing_class=processor,
            compute_metrics=make_compute_metrics(tokenizer, phonemes),
            preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(dim=-1),  # greedy ids
            callbacks=callbacks,
        )
    train_evaluate_and_publish(
        trainer,
        collator,
        checkpoint,
        model_args.model_name_or_path,
        data_args,
        task="automatic-speech-recognition",
        recipe=model_args.recipe,
    )
    return trainer


def cli(argv: list[str] | None = None) -> "Trainer":
    """`main` for the command line: set-up problems are one `error: ...` line (`alhubert.training.commands`)."""
    return run_command(main, argv)


if __name__ == "__main__":
    cli()
