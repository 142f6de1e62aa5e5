"""The experiment report: ``OUT/report.md`` with tables laid out like the paper's, PNG figures and the run's facts.

Every suite leaves ``OUT/suites/<suite>/results.json``: a title, a list of
sections (Markdown tables, figures, notes) and its raw numbers. :func:`write_report`
puts every finished suite of ``OUT`` into one document, followed by how the numbers
were made: the verification rule, the presets and configs, software versions and
hardware. Published numbers always sit in columns labelled as the paper's, never
mixed with ours.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from synface import __version__
from synface.io import atomic_write_text

REPORT_FILE = "report.md"
SUITES_DIR, FIGURES_DIR = "suites", "figures"
SUITE_ORDER = ("demo", "table1", "table2", "table3", "fig3", "fig5", "fig6", "fig7")


def percent(value: float | None) -> str:
    """An accuracy in [0, 1] as ``"91.97"``; missing or NaN as ``"–"``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{100 * value:.2f}"


def published(value: Any) -> str:
    """A published number (already in %) for a table cell."""
    return "–" if value is None else f"{value:.2f}" if isinstance(value, (int, float)) else str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(str(cell) for cell in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def table_section(caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A table section of a suite's results."""
    return {"kind": "table", "caption": caption, "header": list(header), "rows": [list(r) for r in rows]}


def figure_section(caption: str, path: str) -> dict[str, Any]:
    """A figure section; ``path`` is relative to ``OUT``."""
    return {"kind": "figure", "caption": caption, "path": path}


def text_section(text: str) -> dict[str, Any]:
    """A paragraph of notes."""
    return {"kind": "text", "text": text}


def bar_chart(path: Path, groups: Sequence[str], series: Mapping[str, Sequence[float | None]], title: str,
              ylabel: str = "verification accuracy (%)") -> None:
    """Grouped bars (one group per x label, one colour per series) saved as PNG; values in [0, 1]."""
    from synface.eval.plots import new_figure, save_figure

    figure = new_figure(max(5.0, 1.2 * len(groups) + 2), 3.8)
    axis = figure.add_subplot()
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(groups))
    for number, (name, values) in enumerate(series.items()):
        heights = [100 * v if v is not None and math.isfinite(v) else 0.0 for v in values]
        bars = axis.bar(positions + (number - (len(series) - 1) / 2) * width, heights, width, label=name)
        axis.bar_label(bars, labels=[f"{h:.1f}" if h else "" for h in heights], fontsize="x-small", padding=1)
    axis.set_xticks(positions, groups)
    axis.set_ylabel(ylabel)
    axis.set_ylim(0, 105)
    axis.set_title(title, fontsize="medium")
    axis.legend(fontsize="small", loc="lower right")
    axis.grid(True, axis="y", alpha=0.3)
    save_figure(figure, path)


def line_chart(path: Path, xs: Sequence[str], series: Mapping[str, Sequence[float | None]], title: str,
               xlabel: str, ylabel: str = "verification accuracy (%)") -> None:
    """One line per series over categorical x values, saved as PNG; values in [0, 1]."""
    from synface.eval.plots import new_figure, save_figure

    figure = new_figure(6, 3.8)
    axis = figure.add_subplot()
    for name, values in series.items():
        points = [100 * v if v is not None and math.isfinite(v) else np.nan for v in values]
        axis.plot(range(len(xs)), points, marker="o", label=name)
    axis.set_xticks(range(len(xs)), xs)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize="medium")
    axis.legend(fontsize="small")
    axis.grid(True, alpha=0.3)
    save_figure(figure, path)


def environment() -> dict[str, str]:
    """synface, torch and Python versions and the hardware, for the report."""
    import torch

    gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "none"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"synface": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu": f"{cpu} ({os.cpu_count()} logical cores)", "gpu": gpu}


def render_sections(sections: Sequence[Mapping[str, Any]]) -> str:
    """Markdown for a list of table / figure / text sections."""
    parts = []
    for section in sections:
        if section["kind"] == "table":
            caption = f"**{section['caption']}**\n\n" if section.get("caption") else ""
            parts.append(caption + markdown_table(section["header"], section["rows"]))
        elif section["kind"] == "figure":
            parts.append(f"![{section['caption']}]({section['path']})\n\n*{section['caption']}*")
        else:
            parts.append(section["text"])
    return "\n\n".join(parts)


def _rule_text(rules: Sequence[str]) -> str:
    from synface.eval.metrics import get_rule

    lines = [f"- `{name}`: {get_rule(name).description}" for name in rules]
    return ("Verification accuracy is the mean over the test folds (threshold chosen on the other folds) of the "
            f"last epoch's model; no epoch or model is ever chosen on a test set. Rule of the headline numbers: "
            f"`{rules[0]}`.\n" + "\n".join(lines))


def load_suite_results(out: Path) -> list[dict[str, Any]]:
    """Every ``OUT/suites/*/results.json``, in the paper's order."""
    folder = out / SUITES_DIR
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*/results.json"))] \
        if folder.is_dir() else []
    rank = {name: i for i, name in enumerate(SUITE_ORDER)}
    return sorted(found, key=lambda r: (rank.get(r["suite"], len(rank)), r["suite"]))


INTRO = ("Results of `synface experiment` / `synface demo` runs in this folder. Columns marked *published* are the "
         "SynFace paper's numbers (ICCV 2021: LResNet50E-IR, CASIA-WebFace as the real set, LFW as the test set), "
         "shown for reference only; every other number was measured here.")
SYNLFW_TEXT = (
    "The paper's Syn-LFW renders every LFW photo's expression, pose and illumination, reconstructed by a 3D "
    "network, on a new identity. We have no such network, so a Syn-LFW-like set copies cruder statistics of a "
    "real aligned set when one with MTCNN landmarks is available: head pose from fitting the face model's 3D "
    "five-point landmarks to the detected ones (weak perspective; pitch is centred on the set's median), the "
    "expression draw whose mouth width and mouth drop (the only expression cues among five points) are "
    "nearest, and the rendered light whose brightness and left/right, top/bottom contrast of the aligned crop "
    "are nearest. Identities and images per identity follow the real set; identities are new (a test seed no "
    "training set uses). Without such a set, the generator's LFW-like default distributions are used. The pose "
    "check re-estimates yaw from each rendered image's landmarks: a high correlation shows the estimator "
    "recovers poses it is given.")


def _spread(summary: Mapping[str, float]) -> str:
    return f"{summary['median']:.2f} [{summary['p10']:.2f}, {summary['p90']:.2f}]"


def synthetic_test_lines(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The Syn-LFW-like section: how each synthetic test set was made and what statistics it copied."""
    seen: dict[str, Mapping[str, Any]] = {}
    for result in results:
        for entry in result.get("test_sets", []):
            seen.setdefault(entry["id"], entry)
    if not seen:
        return []
    sets, measured = [], []
    for entry in seen.values():
        result = entry["result"]
        if entry["kind"] == "synlfw":
            check = result.get("pose_check", {})
            mixup = result["mixup"] if result["mixup"] != "attack" else f"attack R={result['phi']:g}"
            error, correlation = check.get("yaw_mean_abs_error", float("nan")), check.get("yaw_correlation", float("nan"))
            sets.append([entry["label"].removeprefix("generate "), result["num_identities"], result["num_samples"],
                         result["statistics"], mixup, f"{error:.1f}", f"{correlation:.3f}"])
        else:
            measured.append([result["identities"], result["images"], *(_spread(result[key]) for key in
                             ("yaw", "pitch", "roll", "mouth_width", "mouth_drop", "brightness", "light_left_right",
                              "light_top_bottom")), result["distinct_expressions"], result["distinct_lights"]])
    lines = ["", "## Syn-LFW-like test sets", "", SYNLFW_TEXT, "",
             markdown_table(["set", "identities", "images", "pose/expression/light", "mixup",
                             "pose check: yaw error (deg)", "yaw correlation"], sets)]
    if measured:
        lines += ["", ("Measured statistics, median [10th, 90th percentile] (angles in degrees, mouth ratios "
                       "relative to the set's median face, light proxies in [0, 1] / contrast):"), "",
                  markdown_table(["identities", "photos", "yaw", "pitch", "roll", "mouth width", "mouth drop",
                                  "brightness", "left-right", "top-bottom", "distinct expressions",
                                  "distinct lights"], measured)]
    return lines


def write_report(out: str | Path) -> Path:
    """(Re)write ``OUT/report.md`` from every finished suite in ``OUT``; returns its path."""
    out = Path(out)
    results = load_suite_results(out)
    lines = ["# SynFace experiments", "", INTRO]
    rules: list[str] = []
    presets: dict[str, Any] = {}
    notes: dict[str, None] = {}  # ordered, without repeats
    for result in results:
        lines += ["", f"## {result['title']}", ""]
        lines.append(f"Preset `{result['preset']}`; wall time {result['seconds']:.0f} s "
                     f"({result['steps_ran']} steps run, {result['steps_cached']} taken from the cache or shared with "
                     "another suite).")
        if result.get("description"):
            lines += ["", result["description"]]
        lines += ["", render_sections(result["sections"])]
        if result.get("settings"):
            lines += ["", "<details><summary>Suite settings</summary>", "", "```yaml",
                      yaml.safe_dump(result["settings"], sort_keys=False).rstrip(), "```", "", "</details>"]
        notes.update(dict.fromkeys(result.get("notes", [])))
        for text in result.get("real_data", {}).values():
            notes[f"Real data: {text}."] = None
        rules = rules or list(result.get("rules", []))
        presets[result["preset"]] = result.get("preset_config")
    lines += synthetic_test_lines(results)
    lines += ["", "## How these numbers were made", ""]
    if rules:
        lines += [_rule_text(rules), ""]
    if notes:
        lines += [*[f"- {note}" for note in notes], ""]
    lines.append("Configs: each suite's resolved settings and preset are in `suites/<suite>/config.yaml`; every "
                 "cached step keeps its resolved config in `cache/<step>/config.json`.")
    for name, preset in presets.items():
        if preset:
            lines += ["", f"<details><summary>Preset <code>{name}</code></summary>", "", "```yaml",
                      yaml.safe_dump(preset, sort_keys=False).rstrip(), "```", "", "</details>"]
    lines += ["", markdown_table(["software / hardware", "value"], list(environment().items()))]
    path = out / REPORT_FILE
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
