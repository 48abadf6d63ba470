#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Save a randomly initialised, HuBERT-shaped `transformers.HubertModel`: a teacher to train from scratch.

    python scripts/make_hubert.py --output_dir outputs/hubert-random --hidden_size 128 --num_hidden_layers 12
    python scripts/finetune_ctc.py --model_name_or_path outputs/hubert-random --recipe full ...   # train it with CTC

The folder holds the model and a 16 kHz `Wav2Vec2FeatureExtractor`. The default shape is HuBERT Large's layer order
at a CPU-sized width: pre-LN transformer layers (`do_stable_layer_norm=True`), a layer-normalised conv feature encoder
with biases, 12 layers. Pre-LN because, measured with `scripts/finetune_ctc.py` on an espeak corpus, a post-LN stack
trained with CTC from random weights stayed on the all-blank plateau while the pre-LN one learned.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, HubertConfig, HubertModel, Wav2Vec2FeatureExtractor


logger = logging.getLogger(__name__)


@dataclass
class HubertShapeArguments:
    """The shape, regularisation and seed of the random HuBERT."""

    output_dir: str = field(metadata={"help": "Folder that receives the model and its feature extractor."})
    hidden_size: int = field(default=128, metadata={"help": "Transformer width."})
    num_hidden_layers: int = field(default=12, metadata={"help": "Transformer layers."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads per layer."})
    intermediate_size: int | None = field(default=None, metadata={"help": "Feed-forward width (default 4 x hidden)."})
    conv_channels: int = field(default=32, metadata={"help": "Channels of each of the 7 conv feature-encoder layers."})
    stable_layer_norm: bool = field(
        default=True,
        metadata={
            "help": "Pre-LN layers and a layer-normalised conv encoder (HuBERT Large order); "
            "False: post-LN layers and a group-normalised conv encoder (HuBERT Base)."
        },
    )
    dropout: float = field(default=0.1, metadata={"help": "Hidden, attention, activation and projection dropout."})
    mask_time_length: int = field(default=5, metadata={"help": "SpecAugment time-mask span (frames)."})
    mask_feature_prob: float = field(default=0.2, metadata={"help": "SpecAugment channel-masking probability."})
    mask_feature_length: int = field(default=16, metadata={"help": "SpecAugment channel-mask span."})
    do_normalize: bool = field(default=True, metadata={"help": "Normalise each waveform to zero mean, unit variance."})
    seed: int = field(default=0, metadata={"help": "Seed of the random weights."})


def hubert_config(args: HubertShapeArguments) -> HubertConfig:
    """The `HubertConfig` described by `args`."""
    return HubertConfig(
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size or 4 * args.hidden_size,
        conv_dim=(args.conv_channels,) * 7,
        do_stable_layer_norm=args.stable_layer_norm,
        feat_extract_norm="layer" if args.stable_layer_norm else "group",
        conv_bias=args.stable_layer_norm,
        hidden_dropout=args.dropout,
        attention_dropout=args.dropout,
        activation_dropout=args.dropout,
        feat_proj_dropout=args.dropout,
        mask_time_length=args.mask_time_length,
        mask_feature_prob=args.mask_feature_prob,
        mask_feature_length=args.mask_feature_length,
    )


def make_hubert(args: HubertShapeArguments) -> Path:
    """Save the random model and its feature extractor in `args.output_dir`; return that folder."""
    torch.manual_seed(args.seed)
    model = HubertModel(hubert_config(args))
    output_dir = Path(args.output_dir)
    model.save_pretrained(output_dir)
    # HuBERT with a layer-normalised conv encoder is fed attention masks (as HuBERT Large is).
    Wav2Vec2FeatureExtractor(
        do_normalize=args.do_normalize, return_attention_mask=args.stable_layer_norm
    ).save_pretrained(output_dir)
    logger.info(
        "Saved a random %d-layer HuBERT (hidden %d, %.2f M parameters) to %s",
        args.num_hidden_layers,
        args.hidden_size,
        model.num_parameters() / 1e6,
        output_dir,
    )
    return output_dir


def main(argv: list[str] | None = None) -> Path:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(HubertShapeArguments).parse_args_into_dataclasses(args=argv)
    return make_hubert(args)


if __name__ == "__main__":
    main()
