#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Upload a saved ALHuBERT model to the Hugging Face Hub, ready for `trust_remote_code=True` users: the folder is
loaded and run locally first (a folder that fails is refused), then staged (`alhubert.hub.upload`) and uploaded in
one commit. `scripts/push_to_hub.py` runs the same command.

    alhubert push-to-hub --model_dir outputs/alhubert-small --repo_id my-name/alhubert-small
    alhubert push-to-hub --model_dir outputs/alhubert-small --repo_id my-name/alhubert-small \
        --staging_dir staged --dry_run   # stage and check only
"""

import logging
import sys
import tempfile
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from alhubert.hub import space
from alhubert.hub.upload import stage_for_upload, upload_staged
from alhubert.utils.errors import one_line


logger = logging.getLogger(__name__)


@dataclass
class PushArguments:
    model_dir: str = field(metadata={"help": "Folder written by save_pretrained (conversion or distillation output)."})
    repo_id: str = field(metadata={"help": "Hub repository to create or update, as 'user-or-org/name'."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(
        default=None, metadata={"help": "Branch to upload to (created if missing); default: the main branch."}
    )
    staging_dir: str | None = field(
        default=None, metadata={"help": "New or empty folder to stage the upload in (default: a temporary folder)."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Check and stage, but do not upload."})


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["space"]:  # `alhubert push-to-hub space ...`: the browser demo, alhubert/hub/space.py
        return space.main(argv[1:])
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(PushArguments).parse_args_into_dataclasses(args=argv)
    if args.repo_id.count("/") != 1:
        sys.exit(f"error: --repo_id must look like 'user-or-org/name', got {args.repo_id!r}.")
    with tempfile.TemporaryDirectory() as temporary_dir:
        staging_dir = args.staging_dir or temporary_dir
        try:
            files = stage_for_upload(args.model_dir, staging_dir, repo_id=args.repo_id)
        except FileExistsError as error:
            sys.exit(f"error: {error}")
        except (FileNotFoundError, ValueError) as error:
            sys.exit(f"error: refusing to upload {args.model_dir}: {one_line(error)}")
        logger.info("Staged %d files in %s: %s", len(files), staging_dir, ", ".join(files))
        if args.dry_run:
            logger.info("Dry run: nothing uploaded.")
            return
        url = upload_staged(staging_dir, args.repo_id, private=args.private, revision=args.revision)
        logger.info("Uploaded to %s", url)


if __name__ == "__main__":
    main()
