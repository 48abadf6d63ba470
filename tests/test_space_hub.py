"""The Space on the Hub: its layout and metadata, `alhubert push-to-hub space` (staged, --dry_run, repo type space),
the staged folder running on its own, and the model cards' link to it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import save_tiny_ctc, tiny_config_kwargs
from huggingface_hub import SpaceCard
from space_app import DEMO_CLIP, REPO_ROOT, SPACE_DIR
from typer.testing import CliRunner

from alhubert import AlHubertConfig
from alhubert.cli import app as cli
from alhubert.hub import space
from alhubert.hub.model_cards import build_model_card


def staged_space(tmp_path, *options) -> tuple[Path, str]:
    staging = tmp_path / "staged"
    result = CliRunner().invoke(
        cli, ["push-to-hub", "space", "--repo_id", "me/alhubert", "--staging_dir", str(staging), "--dry_run", *options]
    )
    assert result.exit_code == 0, result.output
    return staging, result.output


def test_the_space_folder_has_the_hub_layout_and_metadata():
    card = SpaceCard.load(SPACE_DIR / "README.md")
    assert (card.data.sdk, card.data.app_file) == ("gradio", "app.py")
    assert card.data.models == ["alhubert/alhubert-small"]
    from packaging.specifiers import SpecifierSet

    tested = re.search(r'"gradio([^"]+)"', (REPO_ROOT / "setup.py").read_text()).group(1)
    assert card.data.sdk_version in SpecifierSet(tested), "the Hub runs a Gradio of the range setup.py installs"


def test_requirements_match_the_package_bounds():
    setup = (REPO_ROOT / "setup.py").read_text()
    install_requires = re.search(r"install_requires=\[(.*?)\]", setup, re.S).group(1)
    package = {re.split(r"[<>=]", spec)[0]: spec for spec in re.findall(r'"([^"]+)"', install_requires)}
    lines = [line.strip() for line in (SPACE_DIR / "requirements.txt").read_text().splitlines()]
    required = {re.split(r"[<>=]", line)[0]: line for line in lines if line and not line.startswith("#")}
    assert set(package) - set(required) == {"typer"}, "the bundled model package's dependencies (the command aside)"
    for name, spec in package.items():
        assert name == "typer" or required[name] == spec
    assert "gradio" not in required, "the Hub installs Gradio from README.md's sdk_version"


def test_dry_run_stages_exactly_the_files_the_space_needs(tmp_path):
    staging, _ = staged_space(tmp_path, "--model_id", "me/alhubert-small")
    staged = sorted(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file())
    package = ["alhubert/__init__.py"] + [
        f"alhubert/models/{path.name}" for path in (REPO_ROOT / "alhubert" / "models").glob("*.py")
    ]
    assert staged == sorted([*space.SPACE_FILES, *package])
    card = SpaceCard.load(staging / "README.md")
    assert card.data.models == ["me/alhubert-small"] and card.data.sdk == "gradio"
    assert card.text == SpaceCard.load(SPACE_DIR / "README.md").text
    for name in ("app.py", "space_analysis.py", "requirements.txt"):
        assert (staging / name).read_bytes() == (SPACE_DIR / name).read_bytes()


def test_the_staged_space_runs_on_its_own(tmp_path):
    """The staged folder imports its bundled alhubert (not the checkout's) and analyses a clip with a local model."""
    staging, _ = staged_space(tmp_path)
    model = save_tiny_ctc(tmp_path / "ctc")
    code = (
        "import alhubert, app, space_analysis as a; loaded = a.load_model(%r); "
        "print(alhubert.__file__); print(repr(a.analyse(loaded, %r, 6).transcript)); "
        "print(app.default_model())"
    ) % (str(model), str(DEMO_CLIP))
    environment = {
        key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "ALHUBERT_SPACE_MODEL")
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=staging, env=environment, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == str(staging / "alhubert" / "__init__.py")
    assert len(eval(lines[1])) > 0  # a transcript
    assert lines[2] == "alhubert/alhubert-small"  # on the Hub: the README's model


def test_upload_creates_a_gradio_space_and_uploads_the_staged_folder(tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/spaces/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    staging = tmp_path / "staged"
    result = CliRunner().invoke(
        cli, ["push-to-hub", "space", "--repo_id", "me/alhubert", "--staging_dir", str(staging), "--private"]
    )
    assert result.exit_code == 0, result.output
    (_, repo, create), (_, uploaded, upload) = calls
    assert repo == uploaded == "me/alhubert"
    assert (create["repo_type"], create["space_sdk"], create["private"], create["exist_ok"]) == (
        "space",
        "gradio",
        True,
        True,
    )
    assert upload["repo_type"] == "space" and Path(upload["folder_path"]) == staging


def test_dry_run_uploads_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.HfApi", lambda *args, **kwargs: pytest.fail("dry run contacted the Hub"))
    staged_space(tmp_path)


@pytest.mark.parametrize("model_id", ["me/alhubert-small", None])
def test_model_cards_link_to_the_space(model_id):
    card = str(build_model_card(AlHubertConfig(**tiny_config_kwargs()), model_id=model_id))
    assert f"https://huggingface.co/spaces/{space.SPACE_ID}" in card
    assert f"python spaces/alhubert/app.py --model {model_id or 'path/to/model'}" in card
