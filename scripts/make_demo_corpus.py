#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Synthesise the bundled demo corpus: short English sentences spoken by espeak-ng, in LibriSpeech layout.

    python scripts/make_demo_corpus.py --output_dir data/demo_corpus

writes `train-clean-demo/` and `dev-clean-demo/`, each `SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac` (16 kHz mono,
16-bit) plus `SPEAKER-CHAPTER.trans.txt` with upper-case transcripts. Each "speaker" is an espeak-ng voice and
variant; every utterance draws its speaking rate and pitch from a seeded generator. The sentences come from a small
fixed grammar (so that a tiny CTC model can learn it in minutes); dev sentences never occur in train. The output is
deterministic for a given espeak-ng and sox version. Needs `espeak-ng` and `sox` on the PATH.
"""

import logging
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm
from transformers import HfArgumentParser


logger = logging.getLogger(__name__)

# (speaker id, espeak-ng voice+variant). Speaker ids follow LibriSpeech's numeric directories.
SPEAKERS = (
    (1001, "en-us+m1"),
    (1002, "en-gb+f2"),
    (1003, "en-gb-scotland+m3"),
    (1004, "en-029+f4"),
    (1005, "en-us+m7"),
    (1006, "en-gb-x-rp+f1"),
)
DETERMINERS = ("THE", "A", "MY", "OUR", "YOUR", "JOHN'S", "THE KING'S")
ADJECTIVES = ("RED", "BLUE", "GREEN", "BIG", "SMALL", "OLD", "HAPPY", "QUIET", "LAZY", "BRAVE")
NOUNS = ("DOG", "CAT", "BIRD", "FISH", "HORSE", "CHILD", "FARMER", "QUEEN", "FOX", "ZEBRA")
VERBS = ("RUNS", "SLEEPS", "JUMPS", "SINGS", "WALKS", "EATS", "SWIMS", "WAITS", "PLAYS")
ADVERBS = ("HOME", "TODAY", "SLOWLY", "OUTSIDE", "AGAIN", "NOW", "VERY QUICKLY", "AT NIGHT")
SPLITS = (("train-clean-demo", 100), ("dev-clean-demo", 200))


@dataclass
class CorpusArguments:
    """Where and how much to synthesise."""

    output_dir: str = field(default="data/demo_corpus", metadata={"help": "Directory that receives the splits."})
    train_utterances_per_speaker: int = field(default=20, metadata={"help": "Training utterances per speaker."})
    dev_utterances_per_speaker: int = field(default=5, metadata={"help": "Held-out (dev) utterances per speaker."})
    seed: int = field(default=0, metadata={"help": "Seed for sentences, speaking rates and pitches."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace an existing output_dir."})


def make_sentences(count: int, rng: random.Random) -> list[str]:
    """Draw `count` distinct sentences from the fixed grammar."""
    sentences = set()
    while len(sentences) < count:
        words = [rng.choice(DETERMINERS)]
        if rng.random() < 0.6:
            words.append(rng.choice(ADJECTIVES))
        words += [rng.choice(NOUNS), rng.choice(VERBS)]
        if rng.random() < 0.35:
            words.append(rng.choice(ADVERBS))
        sentences.add(" ".join(words))
    return sorted(sentences)


def synthesise(text: str, voice: str, rate: int, pitch: int, path: Path):
    """Speak `text` with espeak-ng; store 16 kHz mono 16-bit FLAC peaking at -6 dBFS, edge silence trimmed."""
    speech = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text.lower()],
        check=True,
        capture_output=True,
    ).stdout
    effects = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]  # trim edges
    effects += ["pad", "0.1", "0.1", "gain", "-n", "-6"]
    subprocess.run(
        ["sox", "-D", "-t", "wav", "-", "-r", "16000", "-c", "1", "-b", "16", str(path), *effects],
        input=speech,
        check=True,
        capture_output=True,
    )


def write_split(root: Path, split: str, chapter: int, sentences: list[str], rng: random.Random):
    """Write one split: each speaker reads its own slice of `sentences`, one chapter per speaker."""
    per_speaker = len(sentences) // len(SPEAKERS)
    for index, (speaker, voice) in enumerate(tqdm(SPEAKERS, desc=split)):
        chapter_dir = root / split / str(speaker) / str(chapter)
        chapter_dir.mkdir(parents=True)
        lines = []
        for number, text in enumerate(sentences[index * per_speaker : (index + 1) * per_speaker]):
            utterance_id = f"{speaker}-{chapter}-{number:04d}"
            synthesise(text, voice, rng.randint(140, 200), rng.randint(30, 70), chapter_dir / f"{utterance_id}.flac")
            lines.append(f"{utterance_id} {text}\n")
        (chapter_dir / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))


def main():
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(CorpusArguments).parse_args_into_dataclasses()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install it (e.g. `sudo apt-get install espeak-ng sox`).")
    output_dir = Path(args.output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        if not args.overwrite_output_dir:
            sys.exit(f"error: {output_dir} exists; pass --overwrite_output_dir to replace the corpus in it.")
        foreign = sorted(path.name for path in output_dir.iterdir() if path.name not in {name for name, _ in SPLITS})
        if foreign:  # only a corpus this script wrote is replaced; nothing else is deleted
            sys.exit(
                f"error: {output_dir} holds files this script did not write ({', '.join(foreign[:3])}); "
                "choose another --output_dir."
            )

    rng = random.Random(args.seed)
    counts = (args.train_utterances_per_speaker, args.dev_utterances_per_speaker)
    sentences = make_sentences(len(SPEAKERS) * sum(counts), rng)
    rng.shuffle(sentences)
    split_sentences = (sentences[: len(SPEAKERS) * counts[0]], sentences[len(SPEAKERS) * counts[0] :])

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output_dir.parent) as staging:
        for (split, chapter), texts in zip(SPLITS, split_sentences):
            write_split(Path(staging), split, chapter, texts, rng)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        shutil.move(staging, output_dir)
        Path(staging).mkdir()  # TemporaryDirectory cleans up the (now empty) staging path
    size = sum(path.stat().st_size for path in output_dir.rglob("*") if path.is_file())
    logger.info("Wrote %d utterances (%.2f MB) to %s", len(sentences), size / 1e6, output_dir)


if __name__ == "__main__":
    main()
