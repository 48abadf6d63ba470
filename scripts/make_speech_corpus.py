#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Synthesise a larger espeak-ng speech corpus (about an hour of training speech) in LibriSpeech layout, on demand.

    python scripts/make_speech_corpus.py --output_dir data/speech_corpus

writes `train/`, `dev/`, `test/` and `sid-test/`, each `SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac` (16 kHz mono,
16-bit) plus `SPEAKER-CHAPTER.trans.txt` with upper-case transcripts and `SPEAKER-CHAPTER.phonemes.txt` with the
phonemes espeak-ng speaks (its own `--ipa` transcription for the utterance's voice, space-separated, stress marks
dropped: exact labels for phoneme recognition). It is the bigger sibling of `make_demo_corpus.py`:

- sentences come from a grammar of several sentence shapes over a vocabulary of about 400 words, and every sentence
  occurs in one split only (dev and test sentences never occur in training);
- a "speaker" is an espeak-ng accent plus a voice variant (`en-us+m3`, `en-gb-scotland+f2`, ...); the variants that
  speak dev and test never speak in training, so the held-out splits are held-out voices too;
- `sid-test` holds new sentences spoken by the TRAINING voices (same speaker ids as in `train/`), for speaker
  identification: train a classifier on `train/`, measure its accuracy on `sid-test/`;
- every utterance draws its speaking rate and pitch from a seeded generator, so the output is deterministic for a
  given espeak-ng and sox version.

The corpus is cached: `manifest.json` in the output folder records the generator's parameters, and a second run
with the same parameters returns at once; changed parameters (or --overwrite_output_dir) regenerate it. Synthesis
runs in --num_proc processes. Needs `espeak-ng` and `sox` on the PATH (`make speech-tools` installs them).
"""

import json
import logging
import multiprocessing
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile
from tqdm.auto import tqdm
from transformers import HfArgumentParser


sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_demo_corpus import synthesise as speak  # noqa: E402  (one synthesis pipeline for both corpora)


logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump when the grammar, voices or audio processing change: cached corpora are regenerated
MANIFEST = "manifest.json"

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Voice variants per split: disjoint, so that dev and test voices are never heard in training.
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "adam", "john", "linda", "paul", "robert")
DEV_VARIANTS = ("m5", "f4", "michael")
TEST_VARIANTS = ("m6", "m7", "f5", "david", "steph")

NAMES = (
    "ALICE",
    "BEN",
    "CLARA",
    "DAVID",
    "EMMA",
    "FRANK",
    "GRACE",
    "HENRY",
    "IRIS",
    "JACK",
    "KATE",
    "LEO",
    "MARY",
    "NOAH",
    "OLIVIA",
    "PETER",
    "ROSE",
    "SAM",
    "TOM",
    "VICTOR",
    "WENDY",
    "ZOE",
    "ARTHUR",
    "LUCY",
    "OSCAR",
    "RUTH",
)
ADJECTIVES = (
    "RED",
    "BLUE",
    "GREEN",
    "YELLOW",
    "BLACK",
    "WHITE",
    "BROWN",
    "GREY",
    "BIG",
    "SMALL",
    "TALL",
    "SHORT",
    "OLD",
    "YOUNG",
    "NEW",
    "HAPPY",
    "SAD",
    "QUIET",
    "LOUD",
    "LAZY",
    "BRAVE",
    "CLEVER",
    "GENTLE",
    "HUNGRY",
    "SLEEPY",
    "FRIENDLY",
    "STRANGE",
    "HEAVY",
    "LIGHT",
    "WARM",
    "COLD",
    "SOFT",
    "HARD",
    "BRIGHT",
    "DARK",
    "EMPTY",
    "FULL",
    "CLEAN",
    "DIRTY",
    "FAMOUS",
    "FOOLISH",
    "WISE",
    "TINY",
    "HUGE",
    "ANCIENT",
    "MODERN",
    "SILENT",
    "NOISY",
    "CALM",
    "ANGRY",
    "PROUD",
    "SHY",
    "RICH",
    "POOR",
    "SWEET",
    "BITTER",
    "WOODEN",
    "GOLDEN",
    "SILVER",
    "ROUND",
    "SQUARE",
)
ANIMATE_NOUNS = (
    "DOG",
    "CAT",
    "BIRD",
    "FISH",
    "HORSE",
    "CHILD",
    "FARMER",
    "QUEEN",
    "KING",
    "FOX",
    "ZEBRA",
    "TEACHER",
    "DOCTOR",
    "SAILOR",
    "SOLDIER",
    "BAKER",
    "PAINTER",
    "WRITER",
    "SINGER",
    "DANCER",
    "DRIVER",
    "PILOT",
    "NURSE",
    "STUDENT",
    "GIRL",
    "BOY",
    "WOMAN",
    "MAN",
    "NEIGHBOUR",
    "STRANGER",
    "MONKEY",
    "RABBIT",
    "TIGER",
    "LION",
    "BEAR",
    "WOLF",
    "OWL",
    "DUCK",
    "GOOSE",
    "SHEEP",
    "GOAT",
    "COW",
    "MOUSE",
    "SNAKE",
    "FROG",
    "PRINCE",
    "PRINCESS",
    "MERCHANT",
    "HUNTER",
    "GARDENER",
    "FISHERMAN",
    "SHEPHERD",
    "TRAVELLER",
    "MUSICIAN",
    "ENGINEER",
    "LAWYER",
    "JUDGE",
    "POET",
)
THINGS = (
    "BOOK",
    "LETTER",
    "APPLE",
    "ORANGE",
    "BASKET",
    "HAT",
    "COAT",
    "SHOE",
    "KEY",
    "DOOR",
    "WINDOW",
    "TABLE",
    "CHAIR",
    "LAMP",
    "CANDLE",
    "CUP",
    "PLATE",
    "BOTTLE",
    "BOX",
    "BAG",
    "RING",
    "COIN",
    "MAP",
    "CLOCK",
    "PICTURE",
    "BLANKET",
    "PILLOW",
    "ROPE",
    "STONE",
    "FLOWER",
    "TREE",
    "LEAF",
    "SHELL",
    "FEATHER",
    "BELL",
    "DRUM",
    "GUITAR",
    "VIOLIN",
    "PENCIL",
    "PAPER",
    "NEWSPAPER",
    "RADIO",
    "CAMERA",
    "UMBRELLA",
    "BICYCLE",
    "CART",
    "BOAT",
    "TRAIN",
    "TICKET",
    "GIFT",
    "CAKE",
    "BREAD",
    "CHEESE",
    "SOUP",
    "TEA",
    "COFFEE",
    "MILK",
    "HONEY",
    "EGG",
    "CARROT",
    "POTATO",
    "TOMATO",
    "LEMON",
    "PEAR",
    "PLUM",
    "CHERRY",
    "SANDWICH",
    "SPOON",
    "KNIFE",
    "FORK",
    "MIRROR",
    "BRUSH",
    "TOWEL",
)
PLACES = (
    "THE GARDEN",
    "THE KITCHEN",
    "THE MARKET",
    "THE STATION",
    "THE RIVER",
    "THE FOREST",
    "THE CASTLE",
    "THE VILLAGE",
    "THE CITY",
    "THE HARBOUR",
    "THE BEACH",
    "THE MOUNTAIN",
    "THE LIBRARY",
    "THE SCHOOL",
    "THE CHURCH",
    "THE BRIDGE",
    "THE FIELD",
    "THE FARM",
    "THE HOSPITAL",
    "THE MUSEUM",
    "THE THEATRE",
    "THE OFFICE",
    "THE SHOP",
    "THE BAKERY",
    "THE PARK",
    "THE LAKE",
    "THE ISLAND",
    "THE VALLEY",
    "THE PALACE",
    "THE CELLAR",
    "THE ATTIC",
    "THE HALL",
)
INTRANSITIVE_VERBS = (
    "RUNS",
    "SLEEPS",
    "JUMPS",
    "SINGS",
    "WALKS",
    "SWIMS",
    "WAITS",
    "PLAYS",
    "LAUGHS",
    "CRIES",
    "DANCES",
    "SMILES",
    "WHISTLES",
    "SHOUTS",
    "RESTS",
    "WORKS",
    "READS",
    "WRITES",
    "LISTENS",
    "TRAVELS",
    "HURRIES",
    "WANDERS",
    "SITS",
    "STANDS",
    "FALLS",
    "CLIMBS",
    "RAN",
    "SLEPT",
    "JUMPED",
    "SANG",
    "WALKED",
    "SWAM",
    "WAITED",
    "PLAYED",
    "LAUGHED",
    "DANCED",
    "SMILED",
    "RESTED",
    "WORKED",
    "TRAVELLED",
    "WANDERED",
    "CLIMBED",
)
TRANSITIVE_VERBS = (
    "FINDS",
    "TAKES",
    "CARRIES",
    "BRINGS",
    "SEES",
    "WATCHES",
    "HOLDS",
    "OPENS",
    "CLOSES",
    "BREAKS",
    "FIXES",
    "CLEANS",
    "PAINTS",
    "BUYS",
    "SELLS",
    "WANTS",
    "LIKES",
    "HATES",
    "DROPS",
    "THROWS",
    "CATCHES",
    "HIDES",
    "LOSES",
    "FOUND",
    "TOOK",
    "CARRIED",
    "BROUGHT",
    "SAW",
    "WATCHED",
    "HELD",
    "OPENED",
    "CLOSED",
    "BROKE",
    "FIXED",
    "CLEANED",
    "PAINTED",
    "BOUGHT",
    "SOLD",
    "WANTED",
    "LIKED",
    "DROPPED",
    "THREW",
    "CAUGHT",
    "HID",
    "LOST",
    "GAVE AWAY",
)
ADVERBS = (
    "SLOWLY",
    "QUICKLY",
    "QUIETLY",
    "LOUDLY",
    "HAPPILY",
    "SADLY",
    "CAREFULLY",
    "SUDDENLY",
    "TOGETHER",
    "ALONE",
    "TODAY",
    "YESTERDAY",
    "TOMORROW",
    "AGAIN",
    "OFTEN",
    "RARELY",
    "SOMETIMES",
    "EARLY",
    "LATE",
    "AT NIGHT",
    "IN THE MORNING",
    "AFTER LUNCH",
    "BEFORE DINNER",
    "ALL DAY",
    "EVERY WEEK",
    "ONCE MORE",
    "AT LAST",
)
PREPOSITIONS = ("IN", "NEAR", "BEHIND", "ACROSS", "AROUND", "BESIDE", "INSIDE", "OUTSIDE", "TOWARDS", "UNDER", "OVER")
DETERMINERS = ("THE", "A", "MY", "OUR", "YOUR", "HIS", "HER", "THEIR", "THAT", "THIS", "EVERY", "ONE")
NUMBERS = ("TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN", "TWELVE", "TWENTY", "FIFTY")
PLURAL_THINGS = (
    "APPLES",
    "BOOKS",
    "LETTERS",
    "COINS",
    "FLOWERS",
    "CAKES",
    "EGGS",
    "KEYS",
    "CANDLES",
    "STONES",
    "SHELLS",
    "CUPS",
    "PLATES",
    "TICKETS",
    "PICTURES",
    "BOTTLES",
    "CHERRIES",
    "PEARS",
    "LEMONS",
    "FEATHERS",
)
CONNECTIVES = ("AND THEN", "BUT", "BECAUSE", "WHILE", "SO", "BEFORE", "AFTER", "UNTIL")
QUESTION_WORDS = ("WHERE DID", "WHY DID", "WHEN DID", "HOW DID")
BARE_VERBS = (
    "RUN",
    "SLEEP",
    "JUMP",
    "SING",
    "WALK",
    "SWIM",
    "WAIT",
    "PLAY",
    "LAUGH",
    "DANCE",
    "HIDE",
    "TRAVEL",
    "WORK",
    "LISTEN",
    "CLIMB",
    "WANDER",
)


@dataclass
class SpeechCorpusArguments:
    """Where and how much to synthesise (every field is recorded in the manifest: changing one regenerates)."""

    output_dir: str = field(default="data/speech_corpus", metadata={"help": "Directory that receives the splits."})
    train_utterances: int = field(default=2000, metadata={"help": "Training utterances (about 1.8 s each)."})
    dev_utterances: int = field(default=200, metadata={"help": "Dev utterances (held-out sentences and voices)."})
    test_utterances: int = field(default=300, metadata={"help": "Test utterances (held-out sentences and voices)."})
    train_speakers: int = field(
        default=32,
        metadata={
            "help": f"Training speakers, drawn from {len(ACCENTS)} accents x {len(TRAIN_VARIANTS)} training variants."
        },
    )
    dev_speakers: int = field(default=6, metadata={"help": "Dev speakers (from the dev-only variants)."})
    test_speakers: int = field(default=8, metadata={"help": "Test speakers (from the test-only variants)."})
    sid_test_utterances: int = field(
        default=320, metadata={"help": "Held-out sentences spoken by the training voices (speaker identification)."}
    )
    min_rate: int = field(default=140, metadata={"help": "Lowest espeak-ng speaking rate (words per minute)."})
    max_rate: int = field(default=200, metadata={"help": "Highest espeak-ng speaking rate."})
    min_pitch: int = field(default=25, metadata={"help": "Lowest espeak-ng pitch (0-99)."})
    max_pitch: int = field(default=75, metadata={"help": "Highest espeak-ng pitch (0-99)."})
    seed: int = field(default=0, metadata={"help": "Seed for speakers, sentences, speaking rates and pitches."})
    num_proc: int = field(default=2, metadata={"help": "Synthesis processes."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Regenerate even if the cache matches."})


# ---------------------------------------------------------------------------------------------------------------
# Sentences


def _noun_phrase(rng: random.Random, nouns: tuple[str, ...]) -> str:
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(nouns))
    return " ".join(words)


def _subject(rng: random.Random) -> str:
    return rng.choice(NAMES) if rng.random() < 0.3 else _noun_phrase(rng, ANIMATE_NOUNS)


def _clause(rng: random.Random) -> str:
    """One clause of one of several shapes (intransitive, transitive, with place, counted objects, ...)."""
    shape = rng.randrange(6)
    if shape == 0:
        words = [_subject(rng), rng.choice(INTRANSITIVE_VERBS)]
        if rng.random() < 0.5:
            words.append(rng.choice(ADVERBS))
    elif shape == 1:
        words = [_subject(rng), rng.choice(TRANSITIVE_VERBS), _noun_phrase(rng, THINGS)]
    elif shape == 2:
        words = [_subject(rng), rng.choice(INTRANSITIVE_VERBS), rng.choice(PREPOSITIONS), rng.choice(PLACES)]
    elif shape == 3:
        words = [_subject(rng), rng.choice(TRANSITIVE_VERBS), rng.choice(NUMBERS), rng.choice(PLURAL_THINGS)]
    elif shape == 4:
        words = [_subject(rng), "IS", rng.choice(("VERY", "QUITE", "RATHER", "NOT")), rng.choice(ADJECTIVES)]
    else:
        words = [_subject(rng), rng.choice(TRANSITIVE_VERBS), "THE", rng.choice(THINGS), "FOR", rng.choice(NAMES)]
    return " ".join(words)


def make_sentence(rng: random.Random) -> str:
    """One sentence: a clause, two clauses joined by a connective, or a question."""
    draw = rng.random()
    if draw < 0.15:
        return f"{rng.choice(QUESTION_WORDS)} {_subject(rng)} {rng.choice(BARE_VERBS)}"
    if draw < 0.35:
        return f"{_clause(rng)} {rng.choice(CONNECTIVES)} {_clause(rng)}"
    return _clause(rng)


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    groups = (
        NAMES,
        ADJECTIVES,
        ANIMATE_NOUNS,
        THINGS,
        PLACES,
        INTRANSITIVE_VERBS,
        TRANSITIVE_VERBS,
        ADVERBS,
        PREPOSITIONS,
        DETERMINERS,
        NUMBERS,
        PLURAL_THINGS,
        CONNECTIVES,
        QUESTION_WORDS,
        BARE_VERBS,
    )
    words = {"IS", "VERY", "QUITE", "RATHER", "NOT", "FOR"}
    for group in groups:
        for phrase in group:
            words.update(phrase.split())
    return words


def distinct_sentences(count: int, rng: random.Random) -> list[str]:
    """`count` distinct sentences in draw order."""
    seen, sentences = set(), []
    while len(sentences) < count:
        sentence = make_sentence(rng)
        if sentence not in seen:
            seen.add(sentence)
            sentences.append(sentence)
    return sentences


# ---------------------------------------------------------------------------------------------------------------
# Speakers and the utterance plan


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: where it goes and how espeak-ng speaks it."""

    split: str
    speaker: int
    chapter: int
    number: int
    voice: str
    rate: int
    pitch: int
    text: str

    @property
    def utterance_id(self) -> str:
        return f"{self.speaker}-{self.chapter}-{self.number:04d}"

    def path(self, root: Path) -> Path:
        return root / self.split / str(self.speaker) / str(self.chapter) / f"{self.utterance_id}.flac"


def plan_corpus(args: SpeechCorpusArguments) -> list[Utterance]:
    """Every utterance of every split, drawn deterministically from `args.seed`."""
    rng = random.Random(args.seed)
    splits = (
        ("train", args.train_utterances, args.train_speakers, TRAIN_VARIANTS, 1000),
        ("dev", args.dev_utterances, args.dev_speakers, DEV_VARIANTS, 2000),
        ("test", args.test_utterances, args.test_speakers, TEST_VARIANTS, 3000),
        ("sid-test", args.sid_test_utterances, args.train_speakers, None, 1000),  # the training voices
    )
    total = sum(split[1] for split in splits)
    sentences = distinct_sentences(total, rng)  # distinct across splits: no sentence is in two splits
    plan, start, chosen = [], 0, {}
    for split, count, speaker_count, variants, first_id in splits:
        if variants is None:  # sid-test: the training voices, new sentences, chapters 200 + speaker
            voices = chosen["train"]
        else:
            voices = [f"{accent}+{variant}" for accent in ACCENTS for variant in variants]
            if speaker_count > len(voices):
                raise ValueError(
                    f"{split}: at most {len(voices)} speakers (accent x variant pairs), got {speaker_count}."
                )
            voices = rng.sample(voices, speaker_count)
            chosen[split] = voices
        if speaker_count < 1 or count < speaker_count:
            raise ValueError(f"{split}: need at least one utterance per speaker ({count} for {speaker_count}).")
        for index, text in enumerate(sentences[start : start + count]):
            speaker = index % speaker_count
            plan.append(
                Utterance(
                    split=split,
                    speaker=first_id + speaker,
                    chapter=(200 if variants is None else 100) + speaker,
                    number=index // speaker_count,
                    voice=voices[speaker],
                    rate=rng.randint(args.min_rate, args.max_rate),
                    pitch=rng.randint(args.min_pitch, args.max_pitch),
                    text=text,
                )
            )
        start += count
    return plan


# ---------------------------------------------------------------------------------------------------------------
# Synthesis


def synthesise(utterance: Utterance, root: Path) -> Path:
    """Speak one utterance with the demo corpus's espeak-ng + sox pipeline (16 kHz mono FLAC, edges trimmed)."""
    path = utterance.path(root)
    speak(utterance.text, utterance.voice, utterance.rate, utterance.pitch, path)
    return path


STRESS_MARKS = str.maketrans("", "", "\u02c8\u02cc")  # IPA primary and secondary stress


def phonemes(text: str, voice: str) -> str:
    """The phonemes espeak-ng speaks for `text` in `voice` (IPA, space-separated, stress marks dropped)."""
    output = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "--sep=_", "-v", voice, text.lower()], check=True, capture_output=True, text=True
    ).stdout
    return " ".join(
        phoneme for word in output.translate(STRESS_MARKS).split() for phoneme in word.split("_") if phoneme
    )


def _synthesise_job(job: tuple[Utterance, str]) -> tuple[str, str]:
    utterance, root = job
    synthesise(utterance, Path(root))
    return utterance.utterance_id, phonemes(utterance.text, utterance.voice)


def write_corpus(plan: list[Utterance], root: Path, num_proc: int = 1):
    """Synthesise `plan` under `root` (LibriSpeech layout), with `num_proc` processes and a progress bar."""
    transcripts: dict[Path, list[Utterance]] = {}
    for utterance in plan:
        chapter_dir = utterance.path(root).parent
        chapter_dir.mkdir(parents=True, exist_ok=True)
        transcripts.setdefault(chapter_dir, []).append(utterance)
    jobs = [(utterance, str(root)) for utterance in plan]
    spoken = {}
    progress = tqdm(total=len(jobs), desc="espeak-ng", unit="utt")
    if num_proc > 1:
        with multiprocessing.get_context("spawn").Pool(num_proc) as pool:
            for utterance_id, phoneme_text in pool.imap_unordered(_synthesise_job, jobs, chunksize=16):
                spoken[utterance_id] = phoneme_text
                progress.update()
    else:
        for job in jobs:
            utterance_id, phoneme_text = _synthesise_job(job)
            spoken[utterance_id] = phoneme_text
            progress.update()
    progress.close()
    for chapter_dir, utterances in transcripts.items():
        speaker, chapter = chapter_dir.parent.name, chapter_dir.name
        (chapter_dir / f"{speaker}-{chapter}.trans.txt").write_text(
            "".join(f"{u.utterance_id} {u.text}\n" for u in utterances)
        )
        (chapter_dir / f"{speaker}-{chapter}.phonemes.txt").write_text(
            "".join(f"{u.utterance_id} {spoken[u.utterance_id]}\n" for u in utterances)
        )


def _tool_version(tool: str) -> str:
    result = subprocess.run([tool, "--version"], capture_output=True, text=True)
    return (result.stdout or result.stderr).strip().splitlines()[0] if result.returncode == 0 else "unknown"


def manifest_for(args: SpeechCorpusArguments) -> dict:
    """What determines the corpus: the generator version, its parameters and the synthesis tools' versions."""
    parameters = {
        key: value
        for key, value in asdict(args).items()
        if key not in ("output_dir", "num_proc", "overwrite_output_dir")
    }
    return {
        "generator_version": GENERATOR_VERSION,
        "parameters": parameters,
        "espeak-ng": _tool_version("espeak-ng"),
        "sox": _tool_version("sox"),
    }


def cached(output_dir: Path, manifest: dict) -> bool:
    """Whether `output_dir` holds a complete corpus made with exactly `manifest`."""
    path = output_dir / MANIFEST
    if not path.is_file():
        return False
    stored = json.loads(path.read_text())
    return {key: stored.get(key) for key in manifest} == manifest


def make_speech_corpus(args: SpeechCorpusArguments) -> Path:
    """Build (or reuse) the corpus described by `args`; return its root folder."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} not found: install it (e.g. `sudo apt-get install espeak-ng sox`, or `make speech-tools`)."
            )
    output_dir = Path(args.output_dir)
    manifest = manifest_for(args)
    if not args.overwrite_output_dir and cached(output_dir, manifest):
        logger.info("Reusing the corpus in %s (same parameters).", output_dir)
        return output_dir
    if output_dir.exists() and not (output_dir / MANIFEST).is_file() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} exists and is not a corpus made by this script; choose another folder.")

    plan = plan_corpus(args)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}-"))
    try:
        write_corpus(plan, staging, args.num_proc)
        seconds = {}
        for utterance in plan:
            duration = soundfile.info(str(utterance.path(staging))).duration
            seconds[utterance.split] = seconds.get(utterance.split, 0.0) + duration
        summary = {
            split: {
                "utterances": sum(u.split == split for u in plan),
                "hours": round(total / 3600, 3),
                "speakers": sorted({u.voice for u in plan if u.split == split}),
            }
            for split, total in seconds.items()
        }
        (staging / MANIFEST).write_text(json.dumps({**manifest, "splits": summary}, indent=2) + "\n")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for split, info in summary.items():
        logger.info(
            "%s: %d utterances, %.2f h, %d speakers", split, info["utterances"], info["hours"], len(info["speakers"])
        )
    return output_dir


def main(argv: list[str] | None = None) -> Path:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(SpeechCorpusArguments).parse_args_into_dataclasses(args=argv)
    try:
        return make_speech_corpus(args)
    except (RuntimeError, FileExistsError, ValueError) as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
