"""Declared settings: a dataclass field with its help text, flag name and bounds.

`humact.config` reads these declarations to generate flags, check files and print help; model and
pipeline packages declare their own settings with `opt` without importing the config machinery.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any

__all__ = ["opt"]


def opt(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None, flag: str | None = None,
        lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Any:
    """A config field: its default, help text, the flag name when it is not the field's, and bounds
    (`lo <= value <= hi`; `lo_open` / `hi_open` make them strict)."""
    meta = dict(help=help, flag=flag, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)
