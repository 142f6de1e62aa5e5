"""Subcommands of the ``synface`` program, one module per area.

A module here defines ``register(subparsers)``, adds its parsers and sets
``func=<callable(args) -> int>`` on each; :mod:`synface.cli` finds it by itself.
Command code only turns arguments into library calls and prints results.
"""
