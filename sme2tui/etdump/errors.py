"""The one error this package raises: an ETDump that cannot be read, named by its path."""

from __future__ import annotations

from sme2tui.errors import AnalysisError


class EtdumpError(AnalysisError):
    """An ETDump file is missing, empty, truncated, corrupt or not an ETDump at all."""
