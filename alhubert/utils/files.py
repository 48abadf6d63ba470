# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Atomic writes that follow the user's umask: files and folders the package writes (features, cards, models).

`tempfile.mkstemp` / `mkdtemp` create 0600 files and 0700 folders; moved into place as they are, outputs would be
unreadable by the user's group even where the umask allows it. These helpers give them the modes `open()` and
`mkdir()` would (`0o666 & ~umask`, `0o777 & ~umask`). (`alhubert/models/` is remote code and does not use them.)
"""

import fnmatch
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path


# What `save_pretrained` of a feature extractor, tokenizer or processor writes beside a model.
PREPROCESSING_FILES = (
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "special_tokens_map.json",
    "added_tokens.json",
)


def current_umask() -> int:
    """The process umask, read without changing it (`os.umask` can only be read by setting it, which races with other
    threads): from `/proc/self/status` where the kernel reports it, else from the mode a fresh folder gets."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    probe = Path(tempfile.gettempdir()) / f".umask-probe-{os.getpid()}-{threading.get_ident()}"
    os.mkdir(probe, 0o777)
    try:
        return 0o777 & ~stat.S_IMODE(probe.stat().st_mode)
    finally:
        os.rmdir(probe)


def apply_umask(path: str | os.PathLike) -> None:
    """Give `path` (and, for a folder, everything inside it) the mode a plain `open()` / `mkdir()` would give."""
    umask = current_umask()
    if not os.path.isdir(path):
        os.chmod(path, 0o666 & ~umask)
    for root, _, files in os.walk(path):  # nothing for a file
        os.chmod(root, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


def check_writable_folder(folder: str | os.PathLike, what: str = "output") -> None:
    """Raise `PermissionError` unless files can be created in `folder` (or in its nearest existing ancestor)."""
    folder = Path(os.path.abspath(folder))
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"Cannot write the {what} under {folder}: {existing} is a file, not a folder.")
    try:  # a real probe: os.access says yes to root on read-only mounts such as /sys
        with tempfile.TemporaryFile(dir=existing, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise PermissionError(
            f"Cannot write the {what} in {existing}: the folder is not writable ({error.strerror}); choose another "
            "location or fix its permissions."
        ) from None


def check_replaceable_folder(
    folder: str | os.PathLike, written: tuple[str, ...], model_types: tuple[str, ...] | None, what: str
) -> None:
    """The one rule of `alhubert convert` and `alhubert export onnx` for replacing `folder`: refuse it
    (`FileExistsError` naming it) if it holds any file, folder or link besides the relative paths (glob patterns) in
    `written` that `what` (the command) writes, or, with `model_types`, a `config.json` of another model type. The
    root, the current folder and its parents are never replaced."""
    folder = Path(os.path.abspath(folder))
    if folder == Path(folder.anchor) or folder in [Path.cwd(), *Path.cwd().parents]:
        raise ValueError(
            f"{folder} is the current directory or one of its parents; it cannot be replaced. Choose a new folder."
        )
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    refusal = f"{folder} is not replaced: it holds {{}}, which {what} does not write; choose a new folder"
    for root, folders, files in os.walk(folder):
        for name in sorted(folders) + sorted(files):
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                raise FileExistsError(refusal.format(f"the link {relative}") + ".")
            if name in folders:
                if not any(pattern.startswith(relative + "/") for pattern in written):
                    raise FileExistsError(refusal.format(f"the folder {relative}/") + ".")
            elif not any(fnmatch.fnmatchcase(relative, pattern) for pattern in written):
                raise FileExistsError(refusal.format(relative) + ".")
    if model_types is None:
        return
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or config.get("model_type") not in model_types:
        raise FileExistsError(
            f"{folder} is not replaced: its config.json is not the config of a {' or '.join(model_types)} model, "
            f"so the folder was not written by {what}; choose a new folder."
        )


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Write with `write(temporary_path)` then move into place (umask mode): an interrupted run leaves no partial
    file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(temporary)
        apply_umask(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def make_staging_folder(target: str | os.PathLike) -> Path:
    """An empty hidden folder next to `target` in which to build it (see `replace_folder`)."""
    target = Path(target)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


def replace_folder(new: str | os.PathLike, target: str | os.PathLike, keep_existing: bool = False) -> None:
    """Move the finished folder `new` to `target` (modes per the umask), replacing an old `target` only once `new`
    is complete (on failure the old one is put back). With `keep_existing=True` a `target` that exists (or that
    another process creates first) is kept and `new` deleted: for caches that several processes may fill alike."""
    new, target = Path(new), Path(target)
    apply_umask(new)
    if keep_existing or not target.exists():
        try:
            os.replace(new, target)  # atomic; fails on a non-empty target folder
        except OSError:
            if not (keep_existing and target.exists()):
                raise
            shutil.rmtree(new)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    try:
        os.replace(target, old / target.name)
    except BaseException:
        os.rmdir(old)
        raise
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old / target.name, target)  # put the old folder back
        os.rmdir(old)
        raise
    shutil.rmtree(old)


__all__ = [
    "PREPROCESSING_FILES",
    "atomic_write",
    "check_replaceable_folder",
    "check_writable_folder",
    "make_staging_folder",
    "replace_folder",
]
