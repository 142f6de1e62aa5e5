"""Shared fixtures: fixed seeds, the ../shared data folder, and the gpu marker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_shared = pytest.mark.skip(reason=f"needs the shared data folder at {SHARED}")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "shared" in item.keywords and not SHARED.is_dir():
            item.add_marker(skip_shared)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never touch the user's real cache unless they set SYNFACE_HOME themselves.

    Session-scoped so that it is in place before any module-scoped fixture builds a generator.
    """
    home = os.environ.get("SYNFACE_TEST_HOME", str(tmp_path_factory.getbasetemp() / "synface_home"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNFACE_HOME", home)
        yield


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ``../shared`` folder (tests using it carry the ``shared`` marker)."""
    return SHARED


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the test, restored afterwards: tiny models run fastest
    so on shared cores, and their timing does not depend on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
