"""synface: face recognition trained on controllable synthetic faces.

The package follows the data flow: ``generate`` (face model, renderer, sampling,
identity mixup, dataset writer) -> ``data`` (readers, samplers, augmentation)
-> ``models`` (backbones, margin heads) -> ``train`` -> ``eval`` (alignment,
protocols, metrics) -> ``experiments`` (the paper's suites). ``cli.py`` and
``commands/`` are the programs on top of that library.
"""

__version__ = "0.1.0"
