"""Reading alignpro results files into pandas DataFrames.

A results file holds root attributes (the run's header) and tables: HDF5 groups with one dataset
per column and a ``rows`` attribute counting the committed rows. A file may still be written
while it is read; only committed rows are returned: ``[:rows]`` of every column and, in tables
that have a ``step`` column, only rows with ``step <= steps_done``. All tables come from the
commit that was the latest when the file was opened.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

import h5py
import numpy as np
import pandas as pd

FORMAT_NAME = "alignpro-results"
SUPPORTED_VERSIONS = (1,)
STATUSES = ("running", "complete", "preempted", "failed")
PHASES = (
    "prompter_generation",
    "target_generation",
    "reward",
    "backward",
    "communication",
    "waiting",
)

# The tables of format version 1, by attribute name on Run.
TABLES = {
    "metrics": "metrics",
    "samples": "samples",
    "timings": "timings",
    "eval_summary": "eval/summary",
    "eval_samples": "eval/samples",
    "pool_steps": "pool/steps",
    "pool_distribution": "pool/distribution",
    "pool_templates": "pool/templates",
    "sessions": "sessions",
}


SESSIONS = TABLES["sessions"]


class ResultsFileError(Exception):
    """A file that is not an alignpro results file this package can read."""


@dataclass
class Table:
    """One table: its committed rows, and the unit and description of every column."""

    path: str
    frame: pd.DataFrame
    units: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    description: str = ""


def _text(value) -> str:
    if isinstance(value, bytes):
        # Fixed-length attributes (status, error_message, ...) are NUL-padded bytes.
        return value.rstrip(b"\0").decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _attribute(attrs, name, default=None):
    if name not in attrs:
        return default
    value = attrs[name]
    if isinstance(value, (bytes, str)):
        return _text(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [_text(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open(path: str) -> h5py.File:
    if not os.path.exists(path):
        raise ResultsFileError(f"{path}: no such file")
    # A file whose writer is running (or was killed) can only be opened in SWMR mode. Without
    # HDF5's file lock: alignpro (re)opens the file for writing when a run starts or resumes, and
    # a reader's lock at that moment would make the run fail.
    try:
        return h5py.File(path, "r", swmr=True, locking=False)
    except OSError:
        pass
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as error:
        raise ResultsFileError(
            f"{path}: not an HDF5 file, or one that cannot be opened ({error})"
        ) from None


def _read_table(f: h5py.File, path: str, rows: int, steps_done: int, file_name: str) -> Table:
    """The first `rows` rows of a table, without those of steps after steps_done."""
    group = f[path]
    columns, units, descriptions = {}, {}, {}
    for name, dataset in group.items():
        if not isinstance(dataset, h5py.Dataset):
            continue
        if dataset.shape[0] < rows:
            raise ResultsFileError(
                f"{file_name}: column /{path}/{name} has {dataset.shape[0]} rows, "
                f"fewer than the table's {rows} committed rows"
            )
        if h5py.check_string_dtype(dataset.dtype) is not None:
            values = dataset.asstr(errors="replace")[:rows]
            columns[name] = values if rows else np.array([], dtype=object)
        else:
            columns[name] = dataset[:rows]
        units[name] = _attribute(dataset.attrs, "unit", "")
        descriptions[name] = _attribute(dataset.attrs, "description", "")
    frame = pd.DataFrame(columns)
    if "step" in frame.columns:
        frame = frame[frame["step"] <= steps_done].reset_index(drop=True)
    return Table(path, frame, units, descriptions, _attribute(group.attrs, "description", ""))


class Run:
    """One results file: the header and every table as a DataFrame.

    The header and each table's committed row count are read when the file is opened; a table
    is read on first use, up to that row count. A running run only appends rows, so all tables
    come from the same commit even while the run goes on (load the file again to see newer
    steps); a run resumed since then has dropped and rewritten the steps after its checkpoint,
    and reading a table of it raises ResultsFileError, asking to load the file again.

    ``run.metrics``, ``run.samples``, ``run.timings``, ``run.eval_summary``,
    ``run.eval_samples``, ``run.pool_steps``, ``run.pool_distribution``,
    ``run.pool_templates`` and ``run.sessions`` are the tables of format version 1;
    ``run.table("group/path")`` returns any table of the file, ``run.tables`` lists them.
    """

    def __init__(self, path: str):
        self.path = str(path)
        with _open(self.path) as f:
            attrs = f.attrs
            file_format = _attribute(attrs, "format")
            if file_format != FORMAT_NAME:
                raise ResultsFileError(
                    f"{self.path}: not an alignpro results file (root attribute 'format' is "
                    f"{file_format!r}, expected {FORMAT_NAME!r})"
                )
            version = _attribute(attrs, "format_version")
            if not isinstance(version, int) or version not in SUPPORTED_VERSIONS:
                supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
                raise ResultsFileError(
                    f"{self.path}: results format version {version} is not supported by this "
                    f"version of alignpro_analysis (it reads version {supported}); use the "
                    "analysis/ of the alignpro that wrote the file"
                )
            self.attrs = {name: _attribute(attrs, name) for name in attrs}
            self.steps_done = int(self.attrs.get("steps_done", 0))
            self._rows = {}
            f.visititems(self._count_rows)
        self._tables = {}
        if self.status not in STATUSES:
            raise ResultsFileError(
                f"{self.path}: root attribute 'status' is {self.status!r}; allowed: "
                + ", ".join(STATUSES)
            )
        self._settings = None

    def _count_rows(self, name, item):
        if isinstance(item, h5py.Group) and "rows" in item.attrs:
            self._rows[name] = int(item.attrs["rows"])

    def _table(self, path: str) -> Table | None:
        path = path.strip("/")
        if path not in self._rows:
            return None
        if path not in self._tables:
            with _open(self.path) as f:
                sessions = int(f[SESSIONS].attrs["rows"]) if SESSIONS in f else 0
                if sessions != self._rows.get(SESSIONS, 0):
                    raise ResultsFileError(
                        f"{self.path}: the run was resumed after this file was loaded; load it "
                        "again"
                    )
                self._tables[path] = _read_table(
                    f, path, self._rows[path], self.steps_done, self.path
                )
        return self._tables[path]

    # The header.
    @property
    def format_version(self) -> int:
        return int(self.attrs["format_version"])

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", ""))

    @property
    def is_complete(self) -> bool:
        return self.status == "complete"

    @property
    def error_message(self) -> str:
        """Why the run failed; empty unless the status is failed."""
        return str(self.attrs.get("error_message", ""))

    @property
    def total_steps(self) -> int:
        return int(self.attrs.get("total_steps", 0))

    @property
    def job_name(self) -> str:
        return str(self.attrs.get("job_name", ""))

    @property
    def job_text(self) -> str:
        return str(self.attrs.get("job_text", ""))

    @property
    def world_size(self) -> int:
        return int(self.attrs.get("world_size", 1))

    @property
    def hosts(self) -> list[str]:
        hosts = self.attrs.get("hosts", [])
        return [hosts] if isinstance(hosts, str) else list(hosts)

    @property
    def checkpoint_step(self) -> int:
        return int(self.attrs.get("checkpoint_step", -1))

    @property
    def settings(self) -> dict:
        """The job file parsed as TOML ({} when it does not parse)."""
        if self._settings is None:
            try:
                self._settings = tomllib.loads(self.job_text)
            except tomllib.TOMLDecodeError:
                self._settings = {}
        return self._settings

    def setting(self, key: str, default=None):
        """A job setting by its dotted name, e.g. ``run.setting("optim.kl_coef")``."""
        section, _, name = key.partition(".")
        return self.settings.get(section, {}).get(name, default)

    def status_line(self) -> str:
        """The run's state in one sentence, never calling an unfinished run complete."""
        done, total = self.steps_done, self.total_steps
        if self.status == "complete":
            return f"complete: {done} of {total} steps"
        if self.status == "preempted":
            checkpoint = self.checkpoint_step
            at = f"checkpoint at step {checkpoint}" if checkpoint >= 0 else "no checkpoint"
            return f"preempted after {done} of {total} steps ({at}); resumable, not complete"
        if self.status == "failed":
            message = self.error_message or "no error message"
            return f"failed after {done} of {total} steps, not complete: {message}"
        return (
            f"running (or stopped without a final status): {done} of {total} steps so far, "
            f"last update {self.attrs.get('last_update', '?')}; not complete"
        )

    # The tables.
    @property
    def tables(self) -> list[str]:
        return sorted(self._rows)

    def table(self, path: str) -> pd.DataFrame:
        """A table's committed rows; an empty DataFrame when the file has no such table."""
        table = self._table(path)
        return table.frame.copy() if table is not None else pd.DataFrame()

    def units(self, path: str) -> dict[str, str]:
        table = self._table(path)
        return dict(table.units) if table is not None else {}

    def descriptions(self, path: str) -> dict[str, str]:
        table = self._table(path)
        return dict(table.descriptions) if table is not None else {}

    def unit(self, path: str, column: str) -> str:
        return self.units(path).get(column, "")

    def __getattr__(self, name):
        if name in TABLES:
            return self.table(TABLES[name])
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"Run({self.path!r}: {self.job_name}, {self.status_line()})"

    # Derived views used by the reports.
    @property
    def is_pool(self) -> bool:
        return self.setting("prompter.kind") == "pool" or not self.pool_templates.empty

    def latest_eval_index(self) -> int | None:
        summary = self.eval_summary
        return None if summary.empty else int(summary["eval_index"].max())

    def eval_table(self, eval_index: int | None = None) -> pd.DataFrame:
        """The rows of one evaluation (the latest by default)."""
        summary = self.eval_summary
        if summary.empty:
            return summary
        if eval_index is None:
            eval_index = int(summary["eval_index"].max())
        return summary[summary["eval_index"] == eval_index].reset_index(drop=True)

    def phase_seconds(self) -> pd.DataFrame:
        """Seconds per phase and step, averaged over ranks (one row per step)."""
        timings = self.timings
        columns = [f"{phase}_s" for phase in PHASES if f"{phase}_s" in timings.columns]
        if timings.empty:
            return pd.DataFrame(columns=["step", *columns])
        return timings.groupby("step")[columns].mean().reset_index()


def load(path) -> Run:
    """Reads a results file: ``run = load("runs/demo.h5"); run.metrics``."""
    return Run(path)
