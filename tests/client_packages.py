"""Third-party test clients fetched from the package registry at test time (never copied into the project).

- `transformers_common_tests()`: Transformers' own `tests/test_modeling_common.py` and
  `tests/test_configuration_common.py` from the source distribution of the INSTALLED Transformers version
  (`pip download --no-binary :all:`).
- `s3prl_site()`: S3PRL 0.4.18 installed with `pip install --no-deps --target` into a folder of its own (never into
  the test environment), for `tests/test_s3prl_client.py`.

Both are cached in `$ALHUBERT_TEST_CACHE` (default `~/.cache/alhubert-tests`), so the registry is asked once. When the
registry cannot be reached, the caller skips with the reason.
"""

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


CACHE = Path(os.environ.get("ALHUBERT_TEST_CACHE", Path.home() / ".cache" / "alhubert-tests"))
PIP_TIMEOUT_S = 300

# Transformers' sdist ships tests/test_*_common.py but not three modules they import (tests/exporters/,
# tests/generation/, tests/utils/ are in the GitHub repository only). They are replaced by what HuBERT's tester
# needs of them:
MISSING_MODULES = {
    # torch.export tests (`ExportTesterMixin`) are not run: not in the sdist
    "exporters/test_export.py": 'class ExportTesterMixin:\n    """Not in the sdist: no torch.export tests."""\n',
    # only used by `issubclass` checks; an audio encoder must not inherit it anyway
    "generation/test_utils.py": (
        'class GenerationTesterMixin:\n    """Not in the sdist; HuBERT-like models do not generate."""\n'
    ),
    # non-default values of PreTrainedConfig's common arguments, for ConfigTester.check_config_arguments_init
    "utils/test_configuration_utils.py": (
        "config_common_kwargs = {\n"
        '    "return_dict": False, "output_hidden_states": True, "dtype": "float16", "chunk_size_feed_forward": 5,\n'
        '    "architectures": ["AlHubertModel"], "id2label": {0: "no", 1: "yes"}, "label2id": {"no": 0, "yes": 1},\n'
        '    "problem_type": "single_label_classification",\n'
        "}\n"
    ),
}
PACKAGE = "transformers_common_tests"
TESTS_REQUIREMENT = "parameterized==0.9.0"


class Unavailable(RuntimeError):
    """The client could not be fetched (no registry, no such release); the message says why."""


def _pip(*args: str) -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--quiet"],
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        raise Unavailable(f"pip {args[0]} took over {PIP_TIMEOUT_S} s (registry unreachable?)") from error
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"pip {' '.join(args[:3])} failed (registry unreachable?): {last}")


def _publish(staging: Path, target: Path) -> None:
    """Move a finished folder into place; another process (pytest-xdist) may have done it first."""
    try:
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():
            raise


def transformers_common_tests() -> Path:
    """The folder to put on `sys.path` so that `transformers_common_tests.test_modeling_common` imports."""
    import transformers

    version = transformers.__version__
    root = CACHE / f"transformers-{version}-common-tests"
    if (root / PACKAGE / "test_modeling_common.py").is_file():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        _pip("download", "--no-deps", "--no-binary", ":all:", f"transformers=={version}", "--dest", tmp)
        archives = list(Path(tmp).glob("transformers-*.tar.gz"))
        if not archives:
            raise Unavailable(f"pip downloaded no source distribution of transformers=={version}")
        staging = Path(tmp) / "root"
        package = staging / PACKAGE
        package.mkdir(parents=True)
        with tarfile.open(archives[0]) as archive:
            for name in ("test_modeling_common.py", "test_configuration_common.py"):
                member = f"transformers-{version}/tests/{name}"
                try:
                    source = archive.extractfile(member)
                except KeyError as error:
                    raise Unavailable(f"the transformers=={version} sdist has no {member}") from error
                (package / name).write_bytes(source.read())
        for name, text in {"__init__.py": "", **MISSING_MODULES}.items():
            path = package / name
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(text)
        # the one third-party module they import that the test environment lacks, beside them
        _pip("install", "--no-deps", "--target", str(staging), TESTS_REQUIREMENT)
        _publish(staging, root)
    return root


S3PRL_REQUIREMENT = "s3prl==0.4.18"


def s3prl_site() -> Path:
    """A folder holding S3PRL 0.4.18 alone, installed with `--no-deps`: torch, transformers and huggingface_hub stay
    the environment's own. Its upstream interface (`s3prl.upstream.interfaces.Featurizer`) needs nothing else; its
    recipes need torchaudio, which has no release for torch 2.13 (see the README's SUPERB section)."""
    root = CACHE / "s3prl-0.4.18-site"
    if (root / "s3prl" / "__init__.py").is_file():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        staging = Path(tmp) / "site"
        _pip("install", "--no-deps", "--target", str(staging), S3PRL_REQUIREMENT)
        _publish(staging, root)
    return root
