"""Shared fixtures. Helpers that tests import live in tests/helpers.py."""

import os

import pytest


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from helpers import tiny_config_kwargs  # noqa: E402

from alhubert import AlHubertConfig  # noqa: E402


@pytest.fixture
def tiny_config():
    return AlHubertConfig(**tiny_config_kwargs())


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """A fresh `$ALHUBERT_CACHE` (where the random demo teacher is built) for the tests of one module."""
    cache = tmp_path_factory.mktemp("alhubert-cache")
    previous = os.environ.get("ALHUBERT_CACHE")
    os.environ["ALHUBERT_CACHE"] = str(cache)
    yield cache
    if previous is None:
        del os.environ["ALHUBERT_CACHE"]
    else:
        os.environ["ALHUBERT_CACHE"] = previous
