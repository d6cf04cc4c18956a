"""Where subscribers come from besides the CSV list: exports of other services, read by `subscribers import`."""

from __future__ import annotations

from .formats import FORMATS, Format, detect
from .reader import ExportFile, ImportRow, parse_map

__all__ = ["FORMATS", "ExportFile", "Format", "ImportRow", "detect", "parse_map"]
