# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The character vocabulary of English CTC speech recognition: transcript normalisation, tokenizer, processor; and
a phoneme vocabulary read from the data (phoneme recognition, `build_phoneme_processor`).

Vocabulary (as in the paper's SUPERB ASR task and LibriSpeech fine-tuning): `<pad>` (also the CTC blank), `<unk>`,
`|` (word delimiter), the apostrophe and the 26 letters A-Z. Transcripts are upper-cased, accents are stripped, curly
apostrophes become straight ones, runs of white space become one delimiter; any other character is dropped and
counted.
"""

import json
import os
import string
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable

from transformers import (
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2PhonemeCTCTokenizer,
    Wav2Vec2Processor,
)


PAD_TOKEN, UNK_TOKEN, WORD_DELIMITER = "<pad>", "<unk>", "|"
VOCABULARY = (PAD_TOKEN, UNK_TOKEN, WORD_DELIMITER, "'", *string.ascii_uppercase)
_ALLOWED = set(string.ascii_uppercase) | {"'", " "}
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


def normalize_transcript(text: str) -> tuple[str, Counter]:
    """Upper-case, strip accents and keep only vocabulary characters; returns the text and the dropped characters."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).upper())
    letters = "".join(char for char in decomposed if not unicodedata.combining(char))
    letters = "".join(" " if char.isspace() else char for char in letters)
    dropped = Counter(char for char in letters if char not in _ALLOWED)
    kept = "".join(char for char in letters if char in _ALLOWED)
    return " ".join(kept.split()), dropped


def _tokenizer(tokenizer_class: type, tokens: Iterable[str], **kwargs: object) -> Wav2Vec2CTCTokenizer:
    """A `tokenizer_class` over `tokens` (ids in order), with `<pad>` and `<unk>` and no BOS / EOS."""
    with tempfile.TemporaryDirectory() as folder:
        vocab_file = os.path.join(folder, "vocab.json")
        with open(vocab_file, "w", encoding="utf-8") as file:
            json.dump({token: index for index, token in enumerate(tokens)}, file)
        return tokenizer_class(
            vocab_file, unk_token=UNK_TOKEN, pad_token=PAD_TOKEN, bos_token=None, eos_token=None, **kwargs
        )


def build_tokenizer() -> Wav2Vec2CTCTokenizer:
    """A `Wav2Vec2CTCTokenizer` over `VOCABULARY` (pad id 0 is the CTC blank)."""
    return _tokenizer(Wav2Vec2CTCTokenizer, VOCABULARY, word_delimiter_token=WORD_DELIMITER, do_lower_case=False)


def build_processor(feature_extractor: Wav2Vec2FeatureExtractor) -> Wav2Vec2Processor:
    """The processor saved next to a CTC model, so that `pipeline("automatic-speech-recognition")` can load it."""
    return Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=build_tokenizer())


def build_phoneme_processor(
    feature_extractor: Wav2Vec2FeatureExtractor, transcripts: Iterable[str]
) -> Wav2Vec2Processor:
    """A processor whose tokenizer reads space-separated phonemes (`Wav2Vec2PhonemeCTCTokenizer`, no phonemizer):
    `<pad>` (the CTC blank), `<unk>`, then every phoneme found in `transcripts`, sorted."""
    phonemes = sorted({phoneme for transcript in transcripts for phoneme in transcript.split()})
    if not phonemes:
        raise ValueError(
            "No phonemes in the training transcripts: the text column must hold space-separated phonemes."
        )
    tokenizer = _tokenizer(
        Wav2Vec2PhonemeCTCTokenizer,
        (PAD_TOKEN, UNK_TOKEN, *phonemes),
        do_phonemize=False,
        phone_delimiter_token=" ",
        word_delimiter_token=None,
    )
    return Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer)
