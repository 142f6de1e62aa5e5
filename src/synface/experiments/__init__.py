"""The paper's experiments (Tables 1-3, Figs. 3, 5-7) as cached suites at three presets, with reports and the demo.

::

    from synface.experiments import run_suites

    run_suites("out/exp", ["table3"], preset="tiny")         # OUT/report.md, OUT/figures/*.png
    run_suites("out/exp", ["all"], preset="paper", real_data="data/cfp", lfw="data/lfw")

Suites are declared in ``synface/configs/experiments/*.yaml``; every step (generate,
align, statistics, train, evaluate, analyse) is cached under ``OUT/cache`` by the hash
of its resolved config, so suites share datasets and models and a killed run resumes.
"""

from synface.experiments.run import SuiteOutcome, expand_suites, plan_suites, run_suites
from synface.experiments.spec import list_suites, load_preset, load_suite

__all__ = ["SuiteOutcome", "expand_suites", "list_suites", "load_preset", "load_suite", "plan_suites", "run_suites"]
