"""Experiment tests run torch on one thread: with pytest, torch starts before the OpenMP wait policy can be
set to PASSIVE (as the commands do), and spinning threads on shared cores slow small CPU work several times."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every experiment test runs under ``one_torch_thread``."""
