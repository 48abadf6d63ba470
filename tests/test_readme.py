"""The README's shell commands cannot drift: every command of its ```bash blocks names a script, make target or
`alhubert` sub-command that exists, and passes only flags that command accepts (the training commands parse the
shown arguments for real, with a data source or model stubbed where the README elides them)."""

import re
import shlex
from pathlib import Path

import pytest
import typer

from alhubert.cli import FORWARDED, app
from alhubert.training import (
    kmeans_targets,
    run_distillation,
    run_finetune_classification,
    run_finetune_ctc,
    run_pretrain_hubert,
)
from alhubert.training.arguments import SHIPPED_CONFIGS


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# Commands of other projects that the README shows for completeness (S3PRL, the Hub's own CLI, pip).
FOREIGN = ("python3 run_downstream.py", "hf ", "pip ")
PARSERS = {
    "distill": run_distillation.parse_arguments,
    "finetune-ctc": run_finetune_ctc.parse_arguments,
    "finetune-classification": run_finetune_classification.parse_arguments,
    "kmeans-targets": kmeans_targets.parse_arguments,
    "pretrain-hubert": run_pretrain_hubert.parse_arguments,
}


def readme_commands(text: str) -> list[str]:
    """Every command line of the ```bash blocks: continuations joined, comments and `...` placeholders dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        block = re.sub(r"\\\n\s*", " ", block)
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line.replace(" ...", ""))
    return commands


COMMANDS = readme_commands(README.read_text())


def test_the_readme_shows_the_commands_a_user_runs():
    assert len(COMMANDS) >= 10
    kinds = {command.split()[0] for command in COMMANDS}
    assert {"make", "alhubert", "accelerate", "python"} <= kinds


def flags(tokens: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in tokens if token.startswith("--")]


def typer_command(arguments: list[str]):
    """The Click command an `alhubert ...` line runs (descending into groups such as `export`), and its arguments."""
    command = typer.main.get_command(app)
    while hasattr(command, "commands") and arguments and arguments[0] in command.commands:
        command, arguments = command.commands[arguments[0]], arguments[1:]
    return command, arguments


def typer_options(command) -> set[str]:
    return {option for parameter in command.params for option in getattr(parameter, "opts", [])}


def check_alhubert(arguments: list[str]):
    name, rest = arguments[0], arguments[1:]
    if name in PARSERS:
        stubs = []
        if name not in ("distill", "kmeans-targets", "pretrain-hubert") and "--model_name_or_path" not in rest:
            stubs += ["--model_name_or_path", "stub"]
        if not {"--librispeech_root", "--audiofolder", "--dataset_name"} & set(rest) and not (
            rest and rest[0] in SHIPPED_CONFIGS
        ):
            stubs += ["--audiofolder", "stub"]
        PARSERS[name]([*rest, *stubs])  # raises (or exits) on an unknown flag or a bad value
    elif name in FORWARDED:
        module, _, _ = FORWARDED[name]
        if name == "push-to-hub" and rest[:1] == ["space"]:  # the Space's upload has its own arguments
            module, rest = "alhubert.hub.space", rest[1:]
        source = (REPO / (module.replace(".", "/") + ".py")).read_text()
        for flag in flags(rest):
            assert re.search(rf"\b{flag[2:]}\s*:", source), f"alhubert {name}: unknown flag {flag}"
    else:
        command, rest = typer_command(arguments)
        assert not hasattr(command, "commands"), f"alhubert {' '.join(arguments)}: not a command"
        options = typer_options(command)
        for flag in flags(rest):
            assert flag in options, f"alhubert {name}: unknown flag {flag}"


def check_python_script(arguments: list[str]):
    script = REPO / arguments[0]
    assert script.is_file(), f"{arguments[0]} does not exist"
    source = script.read_text()
    module = re.search(r"^from (alhubert\.[\w.]+) import \(?\s*(?:main|cli)\b", source, flags=re.M)
    if module:  # a thin wrapper: the package command checks its flags
        command = {
            "alhubert.training.run_distillation": "distill",
            "alhubert.training.run_finetune_ctc": "finetune-ctc",
            "alhubert.training.run_finetune_classification": "finetune-classification",
            "alhubert.training.kmeans_targets": "kmeans-targets",
            "alhubert.training.run_pretrain_hubert": "pretrain-hubert",
        }.get(module.group(1))
        if command:
            return check_alhubert([command, *arguments[1:]])
        source = (REPO / (module.group(1).replace(".", "/") + ".py")).read_text()
    for flag in flags(arguments[1:]):
        name = flag[2:]
        assert f'"{flag}"' in source or re.search(rf"\b{name}\s*:", source), f"{arguments[0]}: unknown flag {flag}"


def check_accelerate(arguments: list[str]):
    from accelerate.commands.launch import launch_command_parser

    assert arguments[0] == "launch"
    script_index = next(i for i, token in enumerate(arguments) if token.endswith(".py"))
    launcher, script = arguments[1:script_index], arguments[script_index:]
    parsed = launch_command_parser().parse_args([*launcher, script[0]])  # accelerate's own flags come first
    assert parsed.training_script == script[0]
    check_python_script(script)


def check_make(arguments: list[str]):
    makefile = (REPO / "Makefile").read_text()
    for target in arguments:
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"make {target}: no such target"


def check_source(arguments: list[str]):
    makefile = (REPO / "Makefile").read_text()
    venv = re.search(r"^VENV := (\S+)$", makefile, flags=re.M).group(1)
    assert arguments == [f"{venv}/bin/activate"], f"source {arguments}: make installs into {venv}"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_exists_and_accepts_its_flags(command):
    if command.startswith(FOREIGN):
        return
    tokens = shlex.split(command)
    while tokens and re.fullmatch(r"[A-Z_]+=\S*", tokens[0]):  # environment settings, e.g. OMP_NUM_THREADS=1
        tokens = tokens[1:]
    program, arguments = tokens[0], tokens[1:]
    if program == "source":
        check_source(arguments)
    elif program == "alhubert":
        check_alhubert(arguments)
    elif program in ("python", "python3"):
        check_python_script(arguments)
    elif program == "accelerate":
        check_accelerate(arguments)
    elif program == "make":
        check_make(arguments)
    else:
        pytest.fail(f"README command of an unknown kind: {command}")


def test_the_checker_catches_drift():
    with pytest.raises(BaseException):
        check_accelerate(["launch", "--use_cpu", "true", "scripts/distill.py", "demo"])  # the old README's mistake
    with pytest.raises(BaseException):
        check_alhubert(["finetune-ctc", "--model_name_or_path", "m", "--audiofolder", "a", "--no_such_flag", "1"])
    with pytest.raises(AssertionError):
        check_python_script(["scripts/no_such_script.py"])
    with pytest.raises(AssertionError):
        check_make(["no-such-target"])


def python_blocks_after(heading: str) -> list[str]:
    section = README.read_text().split(heading, 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_onnx_python_block_runs_after_the_bash_block(tmp_path, monkeypatch):
    """The README's `export_onnx(...)` block, run after its first `alhubert export onnx` command, as a reader would
    (on a tiny model saved as `alhubert-small`)."""
    pytest.importorskip("onnxscript")
    import torch
    from helpers import tiny_config_kwargs
    from typer.testing import CliRunner

    from alhubert import AlHubertConfig, AlHubertModel

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).save_pretrained("alhubert-small")
    first = next(command for command in COMMANDS if command.startswith("alhubert export onnx alhubert-small "))
    result = CliRunner().invoke(app, shlex.split(first)[1:])
    assert result.exit_code == 0, result.output
    block = python_blocks_after("## ONNX export and int8")[0]
    namespace = {}
    exec(block, namespace)
    assert sorted(namespace["files"]) == ["fp32", "int8"]
    assert all(path.is_file() for path in namespace["files"].values())


def test_every_make_target_named_in_prose_exists():
    """`make TARGET` in the README's text and the scripts' messages (not only in ```bash blocks) is a Makefile
    target."""
    texts = [README.read_text(), *(path.read_text() for path in (REPO / "scripts").glob("*.py"))]
    targets = {target for text in texts for target in re.findall(r"`make ([a-z][\w-]*)", text)}
    assert {"test", "demo", "speech-tools"} <= targets
    check_make(sorted(targets))
