"""Experiment tests run torch on one thread: with pytest, torch starts before the OpenMP wait policy can be
set to PASSIVE (as the commands do), and spinning threads on shared cores slow small CPU work several times."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
