"""Hostile input to `alhubert kmeans-targets` and `alhubert pretrain-hubert`: one row per case.

Each is one `error: ...` line naming the problem (and the utterance, for labels), exit code 1, and nothing written.
"""

import json
import shutil
from pathlib import Path

import pytest
from test_bad_input_commands import leftovers, stderr_lines

from alhubert.training import kmeans_targets, run_pretrain_hubert


REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "data" / "demo_corpus"
DATA = ["--librispeech_root", str(CORPUS), "--librispeech_sets", "train-clean-demo", "--max_train_samples", "3"]
PRETRAIN = [
    *DATA,
    "--model_preset",
    "demo",
    "--final_dim",
    "8",
    "--max_steps",
    "1",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--per_device_train_batch_size",
    "1",
    "--dataloader_num_workers",
    "0",
]
FIRST = "1001-100-0000"


@pytest.fixture(scope="module")
def labels_dir(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("targets") / "mfcc"
    kmeans_targets.main([*DATA, "--num_clusters", "4", "--kmeans_init", "1", "--output_dir", str(output_dir)])
    return output_dir


def edit_labels(edit):
    def apply(folder: Path):
        path = folder / kmeans_targets.LABELS_FILE
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in edit(rows)))

    return apply


def shorten_first(rows):
    rows[0]["labels"] = rows[0]["labels"][:-1]
    return rows


def out_of_range(rows):
    rows[0]["labels"][3] = 99
    return rows


def no_masked_spec_embed(folder: Path):
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    from alhubert.training.hubert_pretraining import hubert_config

    model_dir = folder / "no-mask-embedding"
    HubertModel(hubert_config("demo", mask_time_prob=0.0, mask_feature_prob=0.0)).save_pretrained(model_dir)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(model_dir)
    return ["--model_name_or_path", str(model_dir)]


PRETRAIN_CASES = {
    # name: (edit of a copy of the labels folder, extra flags or a function of the folder giving them, message)
    "labels one frame short": (edit_labels(shorten_first), [], f"labels of utterance {FIRST} (train) have"),
    "utterance without labels": (edit_labels(lambda rows: rows[1:]), [], f"Utterance {FIRST} (train) has no labels"),
    "label beyond the clusters": (edit_labels(out_of_range), [], f"labels of utterance {FIRST} (train) lie outside"),
    "malformed labels line": (edit_labels(lambda rows: ["not json\n", *rows[1:]]), [], "line 1: not a"),
    "no labels files": (lambda folder: (folder / kmeans_targets.LABELS_FILE).unlink(), [], "holds no labels.jsonl"),
    "encoder without masked_spec_embed": (None, no_masked_spec_embed, "has no masked_spec_embed"),
    "unknown preset": (None, ["--model_preset", "huge"], "--model_preset"),
}


@pytest.mark.parametrize("case", sorted(PRETRAIN_CASES))
def test_pretrain_hubert_refuses_bad_input_with_one_line(case, labels_dir, tmp_path, capsys):
    edit, flags, message = PRETRAIN_CASES[case]
    labels = tmp_path / "labels"
    shutil.copytree(labels_dir, labels)
    if edit is not None:
        edit(labels)
    if callable(flags):
        flags = flags(tmp_path)
    output_dir = tmp_path / "out"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_pretrain_hubert.cli([*PRETRAIN, "--labels_dir", str(labels), "--output_dir", str(output_dir), *flags])
    assert exit_.value.code not in (0, None)
    lines = stderr_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not output_dir.exists() or not any(output_dir.iterdir())


KMEANS_CASES = {
    "layer without a model": (["--layer", "2"], "--layer needs --model_name_or_path"),
    "more clusters than frames": (["--num_clusters", "100000"], "fewer than --num_clusters"),
    "one cluster": (["--num_clusters", "1"], "at least 2"),
    "no such data": (["--librispeech_sets", "train-missing"], "not found"),
}


@pytest.mark.parametrize("case", sorted(KMEANS_CASES))
def test_kmeans_targets_refuses_bad_input_with_one_line(case, tmp_path, capsys):
    flags, message = KMEANS_CASES[case]
    output_dir = tmp_path / "targets"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        kmeans_targets.cli([*DATA, "--kmeans_init", "1", "--output_dir", str(output_dir), *flags])
    assert exit_.value.code not in (0, None)
    lines = [line for line in stderr_lines(capsys.readouterr().err) if " - INFO - " not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not output_dir.exists() and not leftovers(tmp_path)


def test_kmeans_targets_keep_an_existing_folder_unless_told(labels_dir, tmp_path):
    output_dir = tmp_path / "targets"
    shutil.copytree(labels_dir, output_dir)
    before = (output_dir / kmeans_targets.LABELS_FILE).read_bytes()
    with pytest.raises(ValueError, match="is not empty"):
        kmeans_targets.main([*DATA, "--num_clusters", "3", "--kmeans_init", "1", "--output_dir", str(output_dir)])
    assert (output_dir / kmeans_targets.LABELS_FILE).read_bytes() == before
    kmeans_targets.main(
        [*DATA, "--num_clusters", "3", "--kmeans_init", "1", "--output_dir", str(output_dir), "--overwrite_output_dir"]
    )
    assert json.loads((output_dir / kmeans_targets.MANIFEST_FILE).read_text())["num_clusters"] == 3
    assert not leftovers(tmp_path)
