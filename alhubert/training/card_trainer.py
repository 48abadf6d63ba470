# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""A `Trainer` whose pushes upload the project's model card.

`Trainer.push_to_hub` first writes Transformers' auto-generated README.md (`create_model_card`) into the output
folder; here the card the command wrote (with its recipe and metrics) is kept, and a folder without one gets the
project's card (`alhubert.hub.model_cards.write_card_for_folder`). The model folder itself is completed by the models'
own `save_pretrained`, which every Trainer save goes through.
"""

import os
from typing import Any

from transformers import Trainer
from transformers.utils import logging

from ..hub.model_cards import saved_eval_results, write_card_for_folder, write_model_card
from ..models.configuration_alhubert import AlHubertConfig
from .arguments import DataArguments
from .data import AudioCollator, describe_data


logger = logging.get_logger(__name__)


class ProjectCardTrainerMixin:
    """Mix into a `Trainer` subclass (before `Trainer`) to keep or write the project's card on pushes."""

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        output_dir = self.args.output_dir
        # a saved model: keep its card, name the repository
        if self.is_world_process_zero() and os.path.isfile(os.path.join(output_dir, "config.json")):
            model = self.accelerator.unwrap_model(self.model)
            # config None (a wrapper module such as a distillation student): read from the saved folder
            write_card_for_folder(output_dir, config=getattr(model, "config", None), model_id=self.args.hub_model_id)


class AlHubertTrainer(ProjectCardTrainerMixin, Trainer):
    """`transformers.Trainer` with the project's model card on pushes (used by the fine-tuning commands)."""


def write_finetuned_card(
    trainer: Trainer, base_model: str, data_args: DataArguments, recipe: str | None = None
) -> None:
    """The card of a fine-tuned model in `trainer.args.output_dir`: its task, the encoder it started from, the data
    named truthfully and the evaluation metrics the Trainer saved (model-index)."""
    args = trainer.args
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not isinstance(model.config, AlHubertConfig):  # e.g. a plain HubertForCTC: Transformers' own card
        logger.info(f"{type(model).__name__} is not an ALHuBERT model: no ALHuBERT model card written.")
        return
    training_data, datasets = describe_data(data_args, "train")
    eval_data = None
    if data_args.eval_librispeech_sets or data_args.eval_split_name:
        eval_data = describe_data(data_args, "eval")[0]
    elif data_args.validation_split_percentage:
        eval_data = f"{data_args.validation_split_percentage} % held out of the training data"
    settings = {"Recipe": recipe} if recipe else {}
    settings |= {
        "Started from": base_model,
        "Optimiser": f"{getattr(args.optim, 'value', args.optim)}, lr {args.learning_rate}, weight decay "
        f"{args.weight_decay}",
        "Optimizer steps": trainer.state.global_step,
        "Batch size": f"{args.per_device_train_batch_size} x {args.world_size * args.gradient_accumulation_steps}",
    }
    write_model_card(
        args.output_dir,
        model.config,
        model_id=args.hub_model_id,
        base_model=base_model,
        datasets=datasets,
        training_data=training_data,
        recipe=settings,
        eval_results=saved_eval_results(args.output_dir),
        eval_dataset=eval_data,
    )


def train_evaluate_and_publish(
    trainer: Trainer,
    collator: AudioCollator,
    checkpoint: str | None,
    base_model: str,
    data_args: DataArguments,
    task: str,
    recipe: str | None = None,
) -> None:
    """The end of `alhubert finetune-ctc` and `finetune-classification`: train (resuming from `checkpoint` when one is
    given), save the model, metrics (with the collator's skipped-file count) and state, evaluate, write the card and
    push when `--push_to_hub` asks."""
    args = trainer.args
    if args.do_train:
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        metrics = {**train_result.metrics, "skipped_audio_files": collator.num_skipped}
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
    if args.do_eval:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    if trainer.is_world_process_zero() and args.do_train:
        write_finetuned_card(trainer, base_model, data_args, recipe=recipe)
    if args.push_to_hub:
        trainer.push_to_hub(tasks=task)
