# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""The browser demo (`spaces/alhubert/`) as a Hugging Face Space: staged, checked, uploaded as a repo of type space.

    alhubert push-to-hub space --repo_id my-name/alhubert --model_id my-name/alhubert-small
    alhubert push-to-hub space --repo_id my-name/alhubert --staging_dir staged-space --dry_run   # stage only

The staged folder holds exactly what the Hub runs: `SPACE_FILES` (the README's `models:` set to `--model_id` when
given) and the package files the app imports (`alhubert/__init__.py` and `alhubert/models/`, the remote code)."""

import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import SpaceCard
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers import HfArgumentParser


logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SPACE_DIR = PACKAGE_DIR.parent / "spaces" / "alhubert"  # in a checkout of the project
SPACE_ID = "alhubert/alhubert"  # the project's Space, linked from every model card
SPACE_FILES = ("app.py", "space_analysis.py", "requirements.txt", "README.md")


def space_card_section(model_id: str) -> str:
    """The model card's pointer to the Space (and to running the same page locally)."""
    return (
        f"Record or upload speech in the [ALHuBERT Space](https://huggingface.co/spaces/{SPACE_ID}) to see how "
        "similar the layer applications are, what elastic depth costs and what the model outputs; or run the "
        f"same page locally from a checkout of the project: `python spaces/alhubert/app.py --model {model_id}`."
    )


def _check_repo_id(repo_id: str, what: str):
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"{what} {repo_id!r} is not a Hub id: {error}") from None
    if repo_id.count("/") != 1:
        raise ValueError(f"{what} must look like 'user-or-org/name', got {repo_id!r}.")


def stage_space(
    staging_dir: str | os.PathLike, space_dir: str | os.PathLike = SPACE_DIR, model_id: str | None = None
) -> list[str]:
    """Copy the Space's files and the bundled package into the new or empty folder `staging_dir`; with `model_id`,
    the README's `models:` becomes `[model_id]` (the model the app loads). Returns the staged files' relative paths.
    """
    space_dir, staging_dir = Path(space_dir), Path(staging_dir)
    missing = [name for name in SPACE_FILES if not (space_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{space_dir} lacks {', '.join(missing)}; pass --space_dir spaces/alhubert of a checkout of the project."
        )
    if model_id is not None:
        _check_repo_id(model_id, "--model_id")
    if staging_dir.exists() and any(staging_dir.iterdir()):
        raise FileExistsError(f"Staging folder {staging_dir} is not empty; choose a new or empty folder.")
    card = SpaceCard.load(space_dir / "README.md")
    if card.data.get("sdk") != "gradio" or card.data.get("app_file") not in SPACE_FILES:
        raise ValueError(f"{space_dir}/README.md lacks the Space metadata (sdk: gradio, app_file: app.py).")
    staging_dir.mkdir(parents=True, exist_ok=True)
    for name in SPACE_FILES:
        shutil.copy2(space_dir / name, staging_dir / name)
    if model_id is not None:
        card.data.models = [model_id]
        card.save(staging_dir / "README.md")
    for path in [PACKAGE_DIR / "__init__.py", *(PACKAGE_DIR / "models").glob("*.py")]:  # what the Space imports
        target = staging_dir / path.relative_to(PACKAGE_DIR.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return sorted(str(path.relative_to(staging_dir)) for path in staging_dir.rglob("*") if path.is_file())


def upload_space(
    staging_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | bool | None = None
) -> str:
    """Create (or reuse) the Gradio Space `repo_id` and upload the staged folder in one commit; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id, repo_type="space", folder_path=staging_dir, commit_message="Upload the ALHuBERT Space"
    )
    return getattr(commit, "commit_url", None) or str(repo_url)


@dataclass
class SpaceArguments:
    repo_id: str = field(metadata={"help": "Space to create or update, as 'user-or-org/name'."})
    model_id: str | None = field(
        default=None, metadata={"help": "Hub model the Space loads (its README's models:); default: as in the README."}
    )
    space_dir: str = field(default=str(SPACE_DIR), metadata={"help": "The Space's folder (spaces/alhubert)."})
    private: bool = field(default=False, metadata={"help": "Create the Space as private."})
    staging_dir: str | None = field(
        default=None, metadata={"help": "New or empty folder to stage the upload in (default: a temporary folder)."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Stage and check, but do not upload."})


def main(argv: list[str] | None = None) -> int | None:
    """`alhubert push-to-hub space ...`: stage the Space, then upload it (unless --dry_run)."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(SpaceArguments).parse_args_into_dataclasses(args=argv)
    with tempfile.TemporaryDirectory() as temporary_dir:
        staging_dir = args.staging_dir or temporary_dir
        try:
            _check_repo_id(args.repo_id, "--repo_id")
            files = stage_space(staging_dir, args.space_dir, model_id=args.model_id)
        except (FileExistsError, FileNotFoundError, ValueError) as error:
            sys.exit(f"error: {error}")
        logger.info("Staged %d files in %s: %s", len(files), staging_dir, ", ".join(files))
        if args.dry_run:
            logger.info("Dry run: nothing uploaded.")
            return
        logger.info("Uploaded to %s", upload_space(staging_dir, args.repo_id, private=args.private))
