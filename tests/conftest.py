"""Shared fixtures and offline settings for the test suite."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from lcm_testing import make_tiny_config  # noqa: E402


@pytest.fixture
def tiny_config():
    return make_tiny_config()
