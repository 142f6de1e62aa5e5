"""The ``synface`` command line: parses arguments and calls into the library.

Each module of :mod:`synface.commands` that defines ``register(subparsers)``
contributes its subcommands. Every failure the user can fix is a
:class:`~synface.errors.SynfaceError`, printed here as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from synface import __version__
from synface.errors import SynfaceError
from synface.progress import set_quiet

logger = logging.getLogger("synface")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose commands accept ``key=value`` overrides after options too.

    Plain argparse assigns positionals only before the first option, so
    ``generate CONFIG --out DIR seed=3`` would reject ``seed=3``. A parser without
    subcommands of its own parses intermixed, which accepts both orders.
    """

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._parsing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._parsing = True  # parse_known_intermixed_args calls back in here
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one subcommand group per module of ``synface.commands``."""
    parser = _Parser(
        prog="synface",
        description="Generate synthetic faces, train face recognition on them, evaluate it.",
    )
    parser.add_argument("--version", action="version", version=f"synface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info lines")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    import synface.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"synface.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synface`` console script; returns the exit status."""
    # Idle OpenMP threads sleep instead of spinning: on a CPU shared with other work,
    # spinning makes small convolutions and rendering several times slower. Commands
    # import torch lazily, so this takes effect for the whole run.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    set_quiet(args.quiet)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except SynfaceError as error:
        print(f"synface: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synface: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
