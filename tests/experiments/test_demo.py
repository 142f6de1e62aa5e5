"""`synface demo` end to end at a tiny size: report, figures, and a re-run that is all cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "synface.cli", "-q", *args]


def _env(home: Path) -> dict[str, str]:
    # As the command itself does: idle OpenMP threads sleep instead of spinning on a shared CPU.
    return {**os.environ, "SYNFACE_HOME": str(home), "OMP_WAIT_POLICY": "PASSIVE"}


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--identities", "6", "--samples", "2", "--test-identities", "20",
            "--test-samples", "2", "--epochs", "1"]
    started = time.perf_counter()
    env = _env(tmp_path / "home")
    first = subprocess.run(_command(*args), env=env, capture_output=True, text=True, check=False, timeout=900)
    seconds = time.perf_counter() - started
    assert first.returncode == 0, first.stderr[-3000:]
    print(f"\ntiny demo: {seconds:.0f} s")
    report = (out / "report.md").read_text()
    assert "## synface demo" in report and "| Model | Syn-LFW-like |" in report
    for name in ("demo_preview.png", "demo_mds.png"):
        assert f"(figures/{name})" in report and (out / "figures" / name).is_file()
    assert "w/ IM: Syn-LFW-like" in first.stdout
    second = subprocess.run(_command(*args), env=env, capture_output=True, text=True, check=False, timeout=300)
    assert second.returncode == 0
    assert json.loads((out / "suites" / "demo" / "results.json").read_text())["steps_ran"] == 0
