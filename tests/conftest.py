"""Shared fixtures and offline settings for the test suite."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from lcm_testing import make_tiny_config  # noqa: E402


@pytest.fixture
def tiny_config():
    return make_tiny_config()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread per test process: tiny models run faster so, and `make test` runs one
    pytest-xdist worker per core."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
