"""The cached step runner: ids from configs, dependency order, caching, and resuming after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synface.errors import SynfaceError
from synface.experiments import runner as runner_module
from synface.experiments.runner import (
    CONFIG_FILE,
    DONE_FILE,
    Runner,
    Step,
    StepContext,
    register_executor,
    resolve_references,
    topological_order,
)

CALLS: list[str] = []


@pytest.fixture(autouse=True)
def _test_executors(monkeypatch: pytest.MonkeyPatch):
    """A ``write`` step kind that records its calls and writes its config's text plus its inputs."""
    monkeypatch.setattr(runner_module, "_EXECUTORS", dict(runner_module._EXECUTORS))
    monkeypatch.setattr(runner_module, "OUTPUT_NAMES", dict(runner_module.OUTPUT_NAMES))
    monkeypatch.setattr(runner_module, "_check_executors", lambda steps: None)
    CALLS.clear()

    @register_executor("write", output="out.txt")
    def write(context: StepContext) -> dict:
        CALLS.append(context.step.config["text"])
        if context.config.get("fail"):
            raise RuntimeError("killed")
        inputs = [Path(p).read_text() for p in context.config.get("inputs", [])]
        context.output.write_text("+".join([*inputs, context.config["text"]]))
        return {"text": context.config["text"]}


def test_ids_follow_config_and_dependencies_but_not_runtime() -> None:
    a = Step("write", {"text": "a"})
    assert a.id == Step("write", {"text": "a"}, label="other", runtime={"workers": 4}).id
    assert a.id != Step("write", {"text": "b"}).id
    b1 = Step("write", {"text": "b"}, deps=(a,))
    b2 = Step("write", {"text": "b"}, deps=(Step("write", {"text": "a2"}),))
    assert b1.id != b2.id
    assert a.id.startswith("write-") and len(a.id) == len("write-") + 12


def test_topological_order_puts_dependencies_first_once() -> None:
    a = Step("write", {"text": "a"})
    b = Step("write", {"text": "b"}, deps=(a,))
    c = Step("write", {"text": "c"}, deps=(a, b))
    order = topological_order([c, b, Step("write", {"text": "a"})])
    assert [s.config["text"] for s in order] == ["a", "b", "c"]


def test_references_resolve_to_dependency_outputs(tmp_path: Path) -> None:
    a = Step("write", {"text": "a"})
    runner = Runner(tmp_path)
    resolved = resolve_references({"inputs": [a.ref()], "x": {"y": a.ref()}, "n": 3}, runner)
    assert resolved["inputs"] == [str(tmp_path / "cache" / a.id / "out.txt")]
    assert resolved["x"]["y"] == resolved["inputs"][0] and resolved["n"] == 3


def test_runs_once_then_comes_from_the_cache(tmp_path: Path) -> None:
    a = Step("write", {"text": "a"})
    b = Step("write", {"text": "b", "inputs": [a.ref()]}, deps=(a,))
    records = Runner(tmp_path).run([b])
    assert [r.status for r in records] == ["ran", "ran"]
    assert (tmp_path / "cache" / b.id / "out.txt").read_text() == "a+b"
    saved = json.loads((tmp_path / "cache" / b.id / CONFIG_FILE).read_text())
    assert saved["deps"] == [a.id] and saved["config"]["text"] == "b"
    again = Runner(tmp_path).run([b])
    assert [r.status for r in again] == ["cached", "cached"]
    assert again[1].result == {"text": "b"}
    assert CALLS == ["a", "b"]
    assert len((tmp_path / "steps.jsonl").read_text().splitlines()) == 2


def test_a_killed_run_resumes_without_redoing_finished_steps(tmp_path: Path) -> None:
    steps = [Step("write", {"text": str(i)}) for i in range(4)]

    def kill_third(step: Step) -> None:
        if step.config["text"] == "2":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Runner(tmp_path, before_step=kill_third).run(steps)
    assert CALLS == ["0", "1"]
    records = Runner(tmp_path).run(steps)
    assert [r.status for r in records] == ["cached", "cached", "ran", "ran"]
    assert CALLS == ["0", "1", "2", "3"]


def test_a_step_that_fails_midway_is_not_marked_done(tmp_path: Path) -> None:
    failing = Step("write", {"text": "x", "fail": True})
    with pytest.raises(RuntimeError):
        Runner(tmp_path).run([failing])
    folder = tmp_path / "cache" / failing.id
    assert (folder / CONFIG_FILE).is_file() and not (folder / DONE_FILE).exists()
    assert not Runner(tmp_path).is_done(failing)


def test_a_corrupt_done_record_is_a_clear_error(tmp_path: Path) -> None:
    step = Step("write", {"text": "a"})
    Runner(tmp_path).run([step])
    (tmp_path / "cache" / step.id / DONE_FILE).write_text("{broken")
    with pytest.raises(SynfaceError, match="unreadable step record"):
        Runner(tmp_path).run([step])
