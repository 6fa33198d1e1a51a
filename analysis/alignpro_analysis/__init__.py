"""Offline analysis of alignpro results files: loaders, figures, reports, comparisons and
scaling studies.

    from alignpro_analysis import load
    run = load("runs/demo.h5")
    run.metrics.tail()
"""

from .results import (
    FORMAT_NAME,
    PHASES,
    SUPPORTED_VERSIONS,
    TABLES,
    ResultsFileError,
    Run,
    load,
)

__all__ = [
    "FORMAT_NAME",
    "PHASES",
    "SUPPORTED_VERSIONS",
    "TABLES",
    "ResultsFileError",
    "Run",
    "load",
]
