# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""`alhubert kmeans-targets`: HuBERT's pre-training targets, one cluster id per 20 ms frame of every utterance.

    # iteration 1: k-means on 39-dimensional MFCC (13 + deltas + delta-deltas, 100 Hz; frame i takes label 2 i)
    alhubert kmeans-targets --librispeech_root data/demo_corpus --librispeech_sets train-clean-demo \
        --eval_librispeech_sets dev-clean-demo --num_clusters 50 --output_dir outputs/targets-mfcc
    # iteration 2: k-means on hidden states 3 of the model pre-trained on the iteration-1 targets
    alhubert kmeans-targets ... --model_name_or_path outputs/hubert-it1 --layer 3 --output_dir outputs/targets-it2

Fits scikit-learn's `MiniBatchKMeans` on the features of a sample of the training utterances (--fit_utterances),
then labels every utterance of the training (and evaluation) sets. The output folder holds `labels.jsonl` (one JSON
object per utterance, `{"id": ..., "labels": [...]}`, which `datasets.load_dataset("json", data_files=...)` reads
too), `centroids.safetensors` and `kmeans.json` (features, layer, cluster count, the conv stack the frames follow).
Frame counts come from the model's conv stack (`--model_name_or_path`; without it, HuBERT's, which every preset of
`alhubert pretrain-hubert` shares). Utterances are keyed by the data's `id` column (LibriSpeech trees have one).
"""

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

# Only what the argument parser needs is imported here, so that --help is quick; the rest is imported where used.
import numpy as np

from alhubert.training.arguments import DataArguments, OutputArguments
from alhubert.training.commands import parse_command, run_command, setup_errors
from alhubert.utils.threads import set_threads


if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PretrainedConfig


logger = logging.getLogger(__name__)

LABELS_FILE = "labels.jsonl"
CENTROIDS_FILE = "centroids.safetensors"
MANIFEST_FILE = "kmeans.json"
SAMPLING_RATE = 16000


@dataclass
class KMeansArguments:
    """Where the targets go, which features are clustered, and how."""

    output_dir: str = field(metadata={"help": "Folder that receives labels.jsonl, centroids and kmeans.json."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A model folder (or Hub id) whose conv stack sets the frame counts, and whose hidden "
            "states --layer clusters. Default: MFCC features and HuBERT's conv stack."
        },
    )
    layer: int | None = field(
        default=None,
        metadata={"help": "Cluster hidden_states[LAYER] of --model_name_or_path (0 = encoder input) instead of MFCC."},
    )
    num_clusters: int = field(default=100, metadata={"help": "Clusters (HuBERT: 100 on MFCC, 500 later)."})
    fit_utterances: int | None = field(
        default=None, metadata={"help": "Fit k-means on this many training utterances drawn at random (default: all)."}
    )
    kmeans_batch_size: int = field(default=10000, metadata={"help": "MiniBatchKMeans batch (frames)."})
    kmeans_init: int = field(default=20, metadata={"help": "MiniBatchKMeans initialisations (n_init)."})
    kmeans_max_iter: int = field(default=100, metadata={"help": "MiniBatchKMeans passes over the sample (max_iter)."})
    seed: int = field(default=0, metadata={"help": "Seed of the sample and of k-means."})

    def __post_init__(self) -> None:
        if self.layer is not None and self.model_name_or_path is None:
            raise ValueError("--layer needs --model_name_or_path (the model whose hidden states are clustered).")
        if self.num_clusters < 2:
            raise ValueError(f"--num_clusters must be at least 2, got {self.num_clusters}.")
        if self.fit_utterances is not None and self.fit_utterances < 1:
            raise ValueError(f"--fit_utterances must be at least 1, got {self.fit_utterances}.")


def parse_arguments(argv: list[str] | None = None) -> tuple:
    return parse_command(
        (KMeansArguments, DataArguments, OutputArguments),
        prog="alhubert kmeans-targets",
        usage="alhubert kmeans-targets [CONFIG.yaml] --librispeech_root R --output_dir O [--model_name_or_path M "
        "--layer K] ...",
        argv=argv,
    )


def mfcc_features(waveform: np.ndarray) -> np.ndarray:
    """HuBERT's iteration-1 features: 13 MFCC + deltas + delta-deltas (librosa), 25 ms windows every 10 ms, no
    padding at the edges (Kaldi's frame count), as (frames at 100 Hz, 39)."""
    import librosa

    mfcc = librosa.feature.mfcc(
        y=waveform,
        sr=SAMPLING_RATE,
        n_mfcc=13,
        n_fft=400,
        win_length=400,
        hop_length=160,
        center=False,
        n_mels=23,
        htk=True,
        fmin=20,
    )
    deltas = [librosa.feature.delta(mfcc, width=5, order=order, mode="nearest") for order in (1, 2)]
    return np.concatenate([mfcc, *deltas]).T.astype(np.float32)


class FeatureReader:
    """The features of one utterance that k-means sees, and how its frames map to the model's 20 ms frames."""

    def __init__(self, args: KMeansArguments):
        from transformers import AutoConfig, HubertConfig

        self.args = args
        self.kind = "mfcc" if args.layer is None else "hidden_states"
        if args.model_name_or_path is None:
            self.config = HubertConfig()
        else:
            self.config = AutoConfig.from_pretrained(args.model_name_or_path)
        if args.layer is not None:
            import torch
            from transformers import AutoFeatureExtractor, AutoModel

            import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes)

            self.model = AutoModel.from_pretrained(args.model_name_or_path).eval()
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(args.model_name_or_path)
            layers = self.model.config.num_hidden_layers
            if not 0 <= args.layer <= layers:
                raise ValueError(
                    f"--layer {args.layer} does not exist: {args.model_name_or_path} has hidden_states 0 to {layers}."
                )
            self.no_grad = torch.no_grad

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        """Features at the clustering rate: MFCC at 100 Hz, hidden states at the model's frame rate."""
        if self.args.layer is None:
            return mfcc_features(waveform)
        inputs = self.feature_extractor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        with self.no_grad():
            outputs = self.model(inputs["input_values"], output_hidden_states=True)
        return outputs.hidden_states[self.args.layer][0].float().numpy()

    def to_frames(self, labels: np.ndarray, num_samples: int) -> np.ndarray:
        """Cluster ids at the clustering rate -> one per model frame."""
        from alhubert.training.hubert_pretraining import align_labels_to_frames, frame_counts

        frames = int(frame_counts(self.config, num_samples))
        if self.args.layer is None:
            return align_labels_to_frames(labels, frames)
        if len(labels) != frames:
            raise ValueError(f"The model gave {len(labels)} frames for {num_samples} samples, expected {frames}.")
        return labels


def fit_and_label(args: KMeansArguments, data_args: DataArguments, staging: Path) -> dict:
    """Fit k-means on a sample of the training features, label every utterance, write the files into `staging`."""
    from safetensors.numpy import save_file
    from sklearn.cluster import MiniBatchKMeans
    from tqdm.auto import tqdm

    from alhubert.models.audio import load_audio
    from alhubert.training.data import load_audio_dataset

    reader = FeatureReader(args)
    sets = [("train", load_audio_dataset(data_args, "train"))]
    if data_args.eval_librispeech_sets or data_args.eval_split_name:
        sets.append(("eval", load_audio_dataset(data_args, "eval")))
    for split, dataset in sets:
        if "id" not in dataset.column_names:
            raise ValueError(
                f"The {split} data has no 'id' column to key the labels by; it has {dataset.column_names}."
            )
    train = sets[0][1]
    indices = list(range(len(train)))
    random.Random(args.seed).shuffle(indices)
    sample = sorted(indices[: args.fit_utterances or len(indices)])
    features = {}
    for index in tqdm(sample, desc=f"{reader.kind} features (k-means sample)", unit="utt"):
        features[index] = reader(load_audio(train[index]["audio"], SAMPLING_RATE))
    stacked = np.concatenate(list(features.values()))
    if len(stacked) < args.num_clusters:
        raise ValueError(
            f"The sample has {len(stacked)} frames, fewer than --num_clusters {args.num_clusters}; "
            "use more --fit_utterances or fewer clusters."
        )
    kmeans = MiniBatchKMeans(
        n_clusters=args.num_clusters,
        init="k-means++",
        max_iter=args.kmeans_max_iter,
        batch_size=args.kmeans_batch_size,
        n_init=args.kmeans_init,
        max_no_improvement=100,
        tol=0.0,
        reassignment_ratio=0.0,
        random_state=args.seed,
    ).fit(stacked)
    inertia = float(-kmeans.score(stacked) / len(stacked))
    logger.info(
        f"k-means: {args.num_clusters} clusters on {len(stacked)} frames of {len(sample)} utterances; mean squared "
        f"distance {inertia:.4g}"
    )

    counts, labelled = np.zeros(args.num_clusters, dtype=np.int64), 0
    with open(staging / LABELS_FILE, "w") as file:
        for split, dataset in sets:
            for index in tqdm(range(len(dataset)), desc=f"labelling {split}", unit="utt"):
                row = dataset[index]
                waveform = load_audio(row["audio"], SAMPLING_RATE)
                cached = features.pop(index, None) if split == "train" else None
                clusters = kmeans.predict(cached if cached is not None else reader(waveform))
                labels = reader.to_frames(clusters, len(waveform))
                counts += np.bincount(labels, minlength=args.num_clusters)
                file.write(json.dumps({"id": row["id"], "labels": labels.tolist()}) + "\n")
                labelled += 1
    save_file({"centroids": kmeans.cluster_centers_.astype(np.float32)}, str(staging / CENTROIDS_FILE))
    manifest = {
        "features": reader.kind,
        "model_name_or_path": args.model_name_or_path,
        "layer": args.layer,
        "num_clusters": args.num_clusters,
        "label_rate_hz": 50,
        "conv_kernel": list(reader.config.conv_kernel),
        "conv_stride": list(reader.config.conv_stride),
        "fit_utterances": len(sample),
        "fit_frames": int(len(stacked)),
        "mean_squared_distance": inertia,
        "labelled_utterances": labelled,
        "clusters_used": int((counts > 0).sum()),
        "seed": args.seed,
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_labels(labels_dir: str | Path) -> tuple[dict[str, list[int]], dict]:
    """The labels (by utterance id) and the manifest written by `alhubert kmeans-targets` in `labels_dir`."""
    labels_dir = Path(labels_dir)
    manifest_path, labels_path = labels_dir / MANIFEST_FILE, labels_dir / LABELS_FILE
    if not manifest_path.is_file() or not labels_path.is_file():
        raise FileNotFoundError(
            f"{labels_dir} holds no {LABELS_FILE} and {MANIFEST_FILE}; write the targets with "
            "`alhubert kmeans-targets --output_dir` first."
        )
    manifest = json.loads(manifest_path.read_text())
    labels = {}
    with open(labels_path) as file:
        for number, line in enumerate(file, 1):
            try:
                row = json.loads(line)
                labels[str(row["id"])] = row["labels"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(
                    f'{labels_path}, line {number}: not a {{"id", "labels"}} JSON object ({error}); '
                    "write the targets again with `alhubert kmeans-targets`."
                ) from None
    return labels, manifest


def attach_labels(
    dataset: "Dataset", labels: dict[str, list[int]], config: "PretrainedConfig", num_clusters: int, split: str
) -> "Dataset":
    """`dataset` with a `labels` column from `labels` (by `id`), each checked against the model's frame count."""
    from alhubert.training.hubert_pretraining import frame_counts

    if "id" not in dataset.column_names:
        raise ValueError(f"The {split} data has no 'id' column to find its labels by; it has {dataset.column_names}.")
    ids, lengths = dataset["id"], dataset["length"]
    expected = frame_counts(config, [max(length, 0) for length in lengths]).tolist()
    for utterance, length, frames in zip(ids, lengths, expected):
        if utterance not in labels:
            raise ValueError(
                f"Utterance {utterance} ({split}) has no labels; run `alhubert kmeans-targets` on the same data."
            )
        sequence = labels[utterance]
        if length >= 0 and len(sequence) != frames:
            raise ValueError(
                f"The labels of utterance {utterance} ({split}) have {len(sequence)} frames, but its "
                f"audio gives the model {frames}; write the targets again with `alhubert "
                "kmeans-targets` for this audio and this model's conv stack."
            )
        if sequence and not 0 <= min(sequence) <= max(sequence) < num_clusters:
            raise ValueError(f"The labels of utterance {utterance} ({split}) lie outside 0..{num_clusters - 1}.")
    return dataset.add_column("labels", [labels[utterance] for utterance in ids])


def main(argv: list[str] | None = None) -> dict:
    """Fit k-means and write the targets; set-up problems are marked for `cli`, which prints them as one line."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    with setup_errors():
        args, data_args, output_args = parse_arguments(argv)
        from alhubert.utils.files import check_writable_folder, make_staging_folder, replace_folder

        set_threads(output_args.threads)
        output_dir = Path(args.output_dir)
        if output_dir.is_dir() and any(output_dir.iterdir()) and not output_args.overwrite_output_dir:
            raise ValueError(
                f"--output_dir {output_dir} is not empty; pass --overwrite_output_dir to replace it, or "
                "choose another folder."
            )
        check_writable_folder(output_dir, what="targets")
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = make_staging_folder(output_dir)
        try:
            manifest = fit_and_label(args, data_args, staging)
            replace_folder(staging, output_dir)
        finally:
            if staging.exists():
                import shutil

                shutil.rmtree(staging)
    logger.info("Wrote the labels of %d utterances to %s", manifest["labelled_utterances"], output_dir)
    return manifest


def cli(argv: list[str] | None = None) -> dict:
    """`main` for the command line: set-up problems are one `error: ...` line (`alhubert.training.commands`)."""
    return run_command(main, argv)


if __name__ == "__main__":
    cli()
