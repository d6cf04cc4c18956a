"""Where the built-in theme and the starter folder are: packaged in a wheel, the repository in a checkout.

In a wheel they are packaged under newsletter/_skeleton/; in a source checkout the repository
itself is the starter folder (templates/, issues/, newsletter.toml at the top level).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


def skeleton_root() -> Path:
    packaged = PACKAGE / "_skeleton"
    if packaged.is_dir():
        return packaged
    return PACKAGE.parent


def builtin_templates() -> Path:
    return skeleton_root() / "templates"
