"""The one exception type users see, with the few subclasses callers must tell apart.

A message says what failed, shows the offending value or file, and says what is
valid or what to do. The command line prints it as a single line and exits non-zero.
"""

from __future__ import annotations


class SynfaceError(Exception):
    """Any user-facing failure: bad input, bad configuration, missing asset."""


class ConfigError(SynfaceError):
    """A configuration field is unknown, mistyped or has an impossible value."""


class DataError(SynfaceError):
    """A file or folder is missing, unreadable, corrupt or malformed."""


class AssetError(SynfaceError):
    """A model asset (face model, network weights) is missing or broken."""
