"""Shared fixtures. Helpers that tests import live in tests/helpers.py."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from alhubert import AlHubertConfig  # noqa: E402
from helpers import tiny_config_kwargs  # noqa: E402


@pytest.fixture
def tiny_config():
    return AlHubertConfig(**tiny_config_kwargs())
