#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Write model_cards/alhubert-{small,middle,large}.md: one card per released DistilALHuBERT configuration.

Parameter counts and file sizes are measured by saving a model of each preset configuration (float32, safetensors)
to a temporary folder. Run: `python scripts/make_model_cards.py`.
"""

import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.hub.model_cards import PAPER_RECIPE, build_model_card, measure_saved_model


logger = logging.getLogger(__name__)

# The authors' configuration file of each released model.
ORIGINAL_CONFIGS = {"small": "config_model_l2", "middle": "config_model_l3", "large": "config_model_l4"}


@dataclass
class CardArguments:
    output_dir: str = field(default="model_cards", metadata={"help": "Folder that receives alhubert-<preset>.md."})
    namespace: str = field(
        default="alhubert", metadata={"help": "Hub user or organisation the models are published under."}
    )
    presets: list[str] = field(
        default_factory=lambda: list(ORIGINAL_CONFIGS), metadata={"help": "Presets to write cards for."}
    )


def preset_card(preset: str, namespace: str):
    """Build the card of one preset, measuring the saved model."""
    config = AlHubertConfig.from_preset(preset)
    with tempfile.TemporaryDirectory() as model_dir:
        AlHubertModel(config).save_pretrained(model_dir)
        measured = measure_saved_model(model_dir)
    logger.info("%s: %s", preset, measured)
    source = (
        f"The weights are the authors' released DistilALHuBERT **{preset}** model (original configuration "
        f"`{ORIGINAL_CONFIGS[preset]}`, https://github.com/backspacetg/distilAlhubert), converted to Transformers "
        "format with `alhubert convert`. Parameter count and file size were measured by "
        f'`scripts/make_model_cards.py` on a float32 model saved from `AlHubertConfig.from_preset("{preset}")`.'
    )
    return build_model_card(
        config,
        model_id=f"{namespace}/alhubert-{preset}",
        measured=measured,
        source=source,
        recipe=PAPER_RECIPE,
        base_model="facebook/hubert-base-ls960",
        datasets=["librispeech_asr"],
    )


def main():
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(CardArguments).parse_args_into_dataclasses()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for preset in args.presets:
        if preset not in ORIGINAL_CONFIGS:
            sys.exit(f"Unknown preset {preset!r}; choose from {sorted(ORIGINAL_CONFIGS)}.")
        path = output_dir / f"alhubert-{preset}.md"
        preset_card(preset, args.namespace).save(path)
        logger.info("Wrote %s", path)


if __name__ == "__main__":
    main()
