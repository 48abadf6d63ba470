"""The paper in miniature: the speech corpus generator, the teacher and student helpers, and `--quick` end to end."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from transformers import HubertForCTC, HubertModel

from alhubert import AlHubertModel


REPO = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="needs espeak-ng and sox"
)


def load_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus_script():
    return load_file("make_speech_corpus", REPO / "scripts" / "make_speech_corpus.py")


@pytest.fixture(scope="module")
def replication():
    return load_file("replication_benchmark", REPO / "benchmarks" / "replication.py")


def test_corpus_plan_holds_out_sentences_and_voices(corpus_script):
    args = corpus_script.SpeechCorpusArguments(
        train_utterances=300, dev_utterances=40, test_utterances=60, sid_test_utterances=64
    )
    plan = corpus_script.plan_corpus(args)
    assert plan == corpus_script.plan_corpus(args)  # deterministic
    by_split = {split: [u for u in plan if u.split == split] for split in ("train", "dev", "test", "sid-test")}
    assert [len(by_split[split]) for split in by_split] == [300, 40, 60, 64]
    texts = {split: {u.text for u in utterances} for split, utterances in by_split.items()}
    assert len(texts["train"]) == 300 and not texts["train"] & (texts["dev"] | texts["test"] | texts["sid-test"])
    assert not texts["dev"] & texts["test"] and not texts["sid-test"] & (texts["dev"] | texts["test"])
    # speaker identification: new sentences by the training voices, under the same speaker ids
    voices = {split: {(u.speaker, u.voice) for u in utterances} for split, utterances in by_split.items()}
    assert voices["sid-test"] == voices["train"] and len(voices["train"]) == args.train_speakers
    variants = {
        split: {u.voice.split("+")[1] for u in utterances}
        for split, utterances in by_split.items()
        if split != "sid-test"
    }
    assert not variants["train"] & (variants["dev"] | variants["test"]) and not variants["dev"] & variants["test"]
    assert len({u.voice for u in by_split["train"]}) == args.train_speakers
    assert all(args.min_rate <= u.rate <= args.max_rate and args.min_pitch <= u.pitch <= args.max_pitch for u in plan)
    assert len(corpus_script.vocabulary()) >= 300
    assert len({u.utterance_id for u in plan if u.split == "train"}) == 300


@needs_espeak
def test_corpus_is_written_in_librispeech_layout_and_cached(corpus_script, tmp_path):
    argv = [
        "--output_dir",
        str(tmp_path / "corpus"),
        "--train_utterances",
        "4",
        "--dev_utterances",
        "2",
        "--test_utterances",
        "2",
        "--sid_test_utterances",
        "2",
        "--train_speakers",
        "2",
        "--dev_speakers",
        "1",
        "--test_speakers",
        "1",
        "--num_proc",
        "1",
    ]
    root = corpus_script.main(argv)
    flacs = sorted(root.rglob("*.flac"))
    assert len(flacs) == 10 and len(list((root / "sid-test").rglob("*.flac"))) == 2
    transcript = root / "train" / "1000" / "100" / "1000-100.trans.txt"
    lines = transcript.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("1000-100-0000 ") and lines[0].split(" ", 1)[1].isupper()
    # the phonemes espeak-ng speaks, one line per utterance, space-separated IPA without stress marks
    phonemes = (transcript.parent / "1000-100.phonemes.txt").read_text().splitlines()
    assert [line.split()[0] for line in phonemes] == [line.split()[0] for line in lines]
    voice = json.loads((root / "manifest.json").read_text())["splits"]["train"]["speakers"]
    assert phonemes[0].split(" ", 1)[1] in {corpus_script.phonemes(lines[0].split(" ", 1)[1], v) for v in voice}
    assert "\u02c8" not in phonemes[0] and len(phonemes[0].split()) > len(lines[0].split())
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["splits"]["train"]["utterances"] == 4 and manifest["splits"]["train"]["hours"] > 0
    stamp = flacs[0].stat().st_mtime_ns
    corpus_script.main(argv)  # same parameters: reused, nothing rewritten
    assert flacs[0].stat().st_mtime_ns == stamp
    corpus_script.main(argv[:-2] + ["--seed", "1", "--num_proc", "1"])  # changed parameters: regenerated
    assert json.loads((root / "manifest.json").read_text())["parameters"]["seed"] == 1


def test_init_student_copies_a_ctc_teacher_exactly_and_builds_floors(tmp_path):
    make_hubert = load_file("make_hubert", REPO / "scripts" / "make_hubert.py")
    init_student = load_file("init_student", REPO / "scripts" / "init_student.py")
    random_dir = make_hubert.main(
        [
            "--output_dir",
            str(tmp_path / "random"),
            "--hidden_size",
            "32",
            "--num_hidden_layers",
            "3",
            "--num_attention_heads",
            "2",
            "--conv_channels",
            "8",
        ]
    )
    teacher = HubertModel.from_pretrained(random_dir)
    assert teacher.config.do_stable_layer_norm and teacher.config.feat_extract_norm == "layer"
    # a HubertForCTC folder, as scripts/finetune_ctc.py writes it
    ctc = HubertForCTC(teacher.config)
    ctc.hubert.load_state_dict(teacher.state_dict())
    ctc.save_pretrained(tmp_path / "ctc")
    (tmp_path / "ctc" / "preprocessor_config.json").write_text((random_dir / "preprocessor_config.json").read_text())

    copy_dir = init_student.main(
        [
            "--teacher_name_or_path",
            str(tmp_path / "ctc"),
            "--num_hidden_groups",
            "3",
            "--num_hidden_layers",
            "3",
            "--output_dir",
            str(tmp_path / "copy"),
        ]
    )
    copy = AlHubertModel.from_pretrained(copy_dir).eval()
    assert copy.config.do_normalize
    torch.manual_seed(0)
    audio = torch.randn(2, 16000)
    mask = torch.ones(2, 16000, dtype=torch.long)
    mask[1, 12000:] = 0
    with torch.no_grad():
        expected = teacher.eval()(audio, attention_mask=mask, output_hidden_states=True).hidden_states
        actual = copy(audio, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(actual) == len(expected) == 4
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

    init_dir = init_student.main(
        [
            "--teacher_name_or_path",
            str(tmp_path / "ctc"),
            "--num_hidden_groups",
            "2",
            "--num_hidden_layers",
            "6",
            "--output_dir",
            str(tmp_path / "init"),
        ]
    )
    random_student_dir = init_student.main(
        [
            "--teacher_name_or_path",
            str(tmp_path / "ctc"),
            "--num_hidden_groups",
            "2",
            "--num_hidden_layers",
            "6",
            "--init_from_teacher",
            "false",
            "--output_dir",
            str(tmp_path / "rand"),
        ]
    )
    initialised, random_student = (
        AlHubertModel.from_pretrained(init_dir),
        AlHubertModel.from_pretrained(random_student_dir),
    )
    assert initialised.config.num_hidden_layers == 6 and initialised.config.num_hidden_groups == 2
    first_layer = teacher.encoder.layers[0].attention.q_proj.weight
    assert torch.equal(initialised.encoder.layers[0].attention.q_proj.weight, first_layer)
    assert not torch.equal(random_student.encoder.layers[0].attention.q_proj.weight, first_layer)


def test_spread_and_markdown(replication):
    assert replication.spread([0.3, 0.1, 0.2]) == {"mean": 0.2, "min": 0.1, "max": 0.3, "n": 3}
    row = {"cer": replication.spread([0.5]), "wer": replication.spread([0.6, 0.8])}
    assert replication._range(row, "cer") == "0.500" and replication._range(row, "wer") == "0.700 [0.600, 0.800]"
    assert replication._range(row, "per") == "-"


@pytest.mark.slow
@needs_espeak
def test_quick_replication_runs_end_to_end(replication, tmp_path):
    argv = [
        "--quick",
        "--seeds",
        "2",
        "--work_dir",
        str(tmp_path / "work"),
        "--corpus_dir",
        str(tmp_path / "corpus"),
        "--results_dir",
        str(tmp_path / "results"),
    ]
    results = replication.main(argv)
    assert not results["failures"]
    assert list(results["teachers"]) == ["ssl", "ctc"]
    for teacher, table in results["teachers"].items():
        rows = {row["key"]: row for row in table["rows"]}
        assert set(table["beats_mfcc"]) <= {"asr_cer", "asr_wer", "pr_per", "sid_accuracy"}
        assert list(rows) == [
            "teacher-as-alhubert",
            "alhubert-2x12",
            "distilhubert-2",
            "alhubert-3x12",
            "floor-teacher-init",
            "floor-random",
            "mfcc",
        ]
        assert [rows[key]["role"] for key in rows] == [
            "ceiling",
            "student",
            "student",
            "student",
            "floor",
            "floor",
            "baseline",
        ]
        for key, row in rows.items():
            for metric in ("asr_cer", "asr_wer", "pr_per", "sid_accuracy"):
                assert 0 <= row[metric]["min"] <= row[metric]["mean"] <= row[metric]["max"], (teacher, key, metric)
                assert row[metric]["n"] == (2 if key in ("alhubert-2x12", "distilhubert-2") else 1)
            assert row["sid_accuracy"]["max"] <= 1 and (row["encoder_parameters"] > 0) == (key != "mfcc")
        for key in ("alhubert-2x12", "distilhubert-2", "alhubert-3x12"):
            assert all(curve and curve[-1][0] == 2 for curve in rows[key]["loss_curves"])  # 2 distillation steps
        # same encoder size: the DistilHuBERT-shaped student's heads are not part of the saved encoder
        assert rows["distilhubert-2"]["encoder_parameters"] == rows["floor-random"]["encoder_parameters"]
        heads = tmp_path / "work" / teacher / "distilhubert-2-seed0" / "prediction_heads"
        assert (heads / "model.safetensors").is_file()
        assert rows["alhubert-3x12"]["encoder_parameters"] > rows["alhubert-2x12"]["encoder_parameters"]
    ctc, ssl = results["teachers"]["ctc"], results["teachers"]["ssl"]
    assert ctc["best_dev_cer"] is not None and ctc["own_head_test_cer"] is not None
    assert [iteration["targets"] for iteration in ssl["iterations"]] == ["mfcc", "hidden_states"]
    assert ssl["iterations"][1]["layer"] == 6 and all(iteration["steps"] == 2 for iteration in ssl["iterations"])
    # the self-supervised teacher is a plain HubertModel folder, its head apart
    hubert = HubertModel.from_pretrained(tmp_path / "work" / "ssl" / "teacher")
    assert hubert.config.num_hidden_layers == 12
    assert (tmp_path / "work" / "ssl" / "teacher" / "pretraining_head" / "model.safetensors").is_file()

    saved = json.loads((tmp_path / "results" / "replication.json").read_text())
    assert list(saved["teachers"]) == ["ssl", "ctc"]
    table = (tmp_path / "results" / "replication.md").read_text()
    assert table.count("| Encoder | Role |") == 2 and "PR test PER" in table and "SID accuracy" in table
    assert all(row["label"] in table for row in ssl["rows"])
    assert (tmp_path / "results" / "replication.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = replication.main(argv)  # every stage is reused
    assert again["stages_reused"] == again["stages"] == results["stages"]
    assert again["teachers"]["ssl"]["rows"] == ssl["rows"]


def test_the_teacher_is_checked_against_the_random_floor_and_the_mfcc_row(replication):
    spread = replication.spread
    rows = [
        {"key": "teacher-as-alhubert", "asr_cer": spread([0.4]), "sid_accuracy": spread([0.3])},
        {"key": "floor-random", "asr_cer": spread([0.9]), "sid_accuracy": spread([0.5])},
        {"key": "mfcc", "asr_cer": spread([0.3]), "sid_accuracy": spread([0.2])},
    ]
    assert replication.beats_baseline(rows, "floor-random") == {"asr_cer": True, "sid_accuracy": False}
    assert replication.beats_baseline(rows, "mfcc") == {"asr_cer": False, "sid_accuracy": True}
    assert replication.beats_baseline(rows[:1], "mfcc") == {}


def test_plan_estimates_the_full_run_without_running_anything(replication, tmp_path, capsys):
    estimate = replication.main(["--plan", "--work_dir", str(tmp_path / "work")])["estimated_wall_seconds"]
    output = capsys.readouterr().out
    assert "ssl-teacher " in output and "ctc-probe-sid-alhubert-2x12-seed2" in output
    assert all(f"probe-{task}-mfcc-seed0 " in output for task in ("asr", "pr", "sid"))
    args = replication.ReplicationArguments(device="cuda", work_dir=str(tmp_path / "work"))
    assert "--use_cpu" not in replication._common_training_flags(args, 0)
    assert "--use_cpu" in replication._common_training_flags(replication.ReplicationArguments(), 0)
    assert 2 * 60 * 60 < estimate < 3 * 60 * 60  # about two and a half hours on 2 cores
    assert not (tmp_path / "work" / "ssl").exists()


def test_pretraining_options_reach_the_self_supervised_teacher_commands(replication, tmp_path):
    def commands(**options) -> tuple[list[str], list[str]]:
        args = replication.ReplicationArguments(work_dir=str(tmp_path), **options)
        stages = {stage.name: stage.argv for stage in replication.ssl_teacher_stages(args, tmp_path, tmp_path)}
        return stages["ssl-hubert-it1"], stages["ssl-teacher"]

    def start(argv: list[str]) -> str:
        return argv[argv.index("--model_name_or_path") + 1]

    # HuBERT's own recipe: masked frames only, both iterations from random weights (the 64-channel random start)
    first, second = commands(ssl_unmasked_weight=0.0, ssl_iteration2_start="random")
    assert "--unmasked_weight" not in first + second
    assert start(first) == start(second) == str(tmp_path / "teacher-random-ssl")
    first, second = commands()  # the defaults: unmasked frames weighted 3, iteration 2 continues iteration 1
    assert all(argv[argv.index("--unmasked_weight") + 1] == "3.0" for argv in (first, second))
    assert start(first) == str(tmp_path / "teacher-random-ssl")
    assert start(second) == str(tmp_path / "ssl" / "hubert-it1")
    # with the teachers' conv width, teacher A shares teacher B's random start
    first, _ = commands(ssl_conv_channels=replication.ReplicationArguments.teacher_conv_channels)
    assert start(first) == str(tmp_path / "teacher-random")


def test_each_teacher_gets_a_random_start_and_floor_of_its_own_shape(replication, tmp_path):
    args = replication.ReplicationArguments(work_dir=str(tmp_path))
    serial, chains = replication.build_plan(args)
    by_name = {stage.name: stage.argv for stage in serial}
    channels = {
        name: by_name[name][by_name[name].index("--conv_channels") + 1]
        for name in by_name
        if "random" in name and "floor" not in name
    }
    assert channels == {"teacher-random-ssl": "64", "teacher-random": "32"}
    floor_sources = {
        name: argv[argv.index("--teacher_name_or_path") + 1]
        for name, argv in by_name.items()
        if name.startswith("floor-random")
    }
    assert floor_sources == {
        "floor-random-ssl": str(tmp_path / "teacher-random-ssl"),
        "floor-random": str(tmp_path / "teacher-random"),
    }
    floor_probes = {(owners, stages[0].name) for owners, key, seed, stages in chains if key == "floor-random"}
    assert {name for owners, name in floor_probes if owners == ("ssl",)} == {
        f"probe-{task}-floor-random-ssl-seed0" for task in ("asr", "pr", "sid")
    }
    assert {name for owners, name in floor_probes if owners == ("ctc",)} == {
        f"probe-{task}-floor-random-seed0" for task in ("asr", "pr", "sid")
    }
    mfcc = [stages[0].argv for owners, key, seed, stages in chains if key == "mfcc"]
    assert all(argv[argv.index("--model_name_or_path") + 1] == str(tmp_path / "floor-random") for argv in mfcc)


def test_finetune_ctc_early_stopping_needs_the_best_model(tmp_path):
    finetune_ctc = load_file("finetune_ctc", REPO / "scripts" / "finetune_ctc.py")
    make_hubert = load_file("make_hubert", REPO / "scripts" / "make_hubert.py")
    model_dir = make_hubert.main(
        [
            "--output_dir",
            str(tmp_path / "hubert"),
            "--hidden_size",
            "32",
            "--num_hidden_layers",
            "2",
            "--num_attention_heads",
            "2",
            "--conv_channels",
            "8",
        ]
    )
    argv = [
        "--model_name_or_path",
        str(model_dir),
        "--librispeech_root",
        str(REPO / "data" / "demo_corpus"),
        "--librispeech_sets",
        "train-clean-demo",
        "--max_train_samples",
        "4",
        "--output_dir",
        str(tmp_path / "out"),
        "--do_train",
        "--max_steps",
        "1",
        "--report_to",
        "none",
        "--use_cpu",
        "--early_stopping_patience",
        "2",
    ]
    with pytest.raises(ValueError, match="load_best_model_at_end"):
        finetune_ctc.main(argv)


def test_quick_never_overwrites_the_published_results(replication):
    published = replication.ReplicationArguments().results_dir
    quick = replication.ReplicationArguments(quick=True)
    assert Path(quick.results_dir) == Path(quick.work_dir) / "results" and quick.results_dir != published
    assert replication.ReplicationArguments(quick=True, results_dir="elsewhere").results_dir == "elsewhere"
