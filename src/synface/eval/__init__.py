"""Face verification evaluation: real-photo alignment, pair protocols, metrics, plots, analysis.

The pieces, in the order an evaluation uses them:

- :mod:`synface.eval.protocols` -- :class:`~synface.eval.protocols.PairSet` and
  :func:`~synface.eval.protocols.load_protocol` (``lfw``, ``lfw-view1``, ``cfp-ff``,
  ``cfp-fp``, ``bin``, ``pairs``, ``synthetic``);
- :mod:`synface.eval.embed` -- batched embedding of a pair set's images;
- :mod:`synface.eval.metrics` -- 10-fold accuracy under the SynFace, arcface_torch and
  FaceX-Zoo threshold rules, ROC, AUC, EER, TAR@FAR;
- :mod:`synface.eval.report` -- results as tables and JSON;
- :mod:`synface.eval.plots` and :mod:`synface.eval.analysis` -- ROC curves, the MDS
  embedding figure and intra/inter-class variation.

Submodules are imported on demand; importing this package loads nothing heavy.
"""
