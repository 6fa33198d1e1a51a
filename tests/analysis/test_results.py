"""The loaders: every table of the file as a DataFrame, checked against h5py; the format check;
runs that are not complete."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import h5raw
from alignpro_analysis import TABLES, ResultsFileError, load


def assert_same_column(loaded, raw, where):
    assert len(loaded) == len(raw), where
    for i, (a, b) in enumerate(zip(loaded, raw)):
        if isinstance(b, str):
            assert a == b, f"{where} row {i}"
        elif isinstance(b, float) and math.isnan(b):
            assert math.isnan(a), f"{where} row {i}"
        else:
            assert a == b, f"{where} row {i}: {a!r} != {b!r}"


EVERY_KIND_OF_RUN = [
    "main_run",
    "preempted_run",
    "killed_run",
    "failed_run",
    "fresh_run",
    "resumed_run",
]


@pytest.mark.parametrize("which", EVERY_KIND_OF_RUN)
def test_every_table_matches_the_file(request, which):
    path = request.getfixturevalue(which)
    run = load(path)
    paths = h5raw.table_paths(path)
    assert set(TABLES.values()) <= set(paths)
    assert run.tables == paths
    for table in paths:
        raw = h5raw.columns(path, table)
        frame = run.table(table)
        assert list(frame.columns) == list(raw), table
        for name, values in raw.items():
            assert_same_column(frame[name].tolist(), values, f"/{table}/{name}")
    # The named loaders are the same tables.
    for attribute, table in TABLES.items():
        assert getattr(run, attribute).equals(run.table(table)), attribute


def test_header_units_and_descriptions_come_from_the_file(main_run):
    run = load(main_run)
    attrs = h5raw.root(main_run)
    assert run.format_version == attrs["format_version"] == 1
    assert run.status == attrs["status"] == "complete"
    assert run.steps_done == attrs["steps_done"] == attrs["total_steps"] == len(run.metrics)
    assert run.world_size == attrs["world_size"]
    assert run.job_text == attrs["job_text"]
    assert run.setting("prompter.kind") == "pool"
    with h5py.File(main_run, "r", swmr=True) as f:
        for name, dataset in f["metrics"].items():
            assert run.unit("metrics", name) == dataset.attrs["unit"]
            assert run.descriptions("metrics")[name] == dataset.attrs["description"]
    assert run.unit("metrics", "kl_mean") == "nats"


def test_metrics_agree_with_the_samples_they_summarise(main_run):
    # The file's own numbers must hang together; this catches rows read from the wrong place.
    run = load(main_run)
    samples = run.samples
    for row in run.metrics.itertuples():
        rewards = samples[samples["step"] == row.step]["reward"].to_numpy()
        assert len(rewards) == row.samples
        assert rewards.mean() == pytest.approx(row.reward_mean, abs=1e-9)


def test_a_killed_run_reads_as_running_and_not_complete(killed_run):
    run = load(killed_run)
    assert run.status == "running"
    assert not run.is_complete
    assert "not complete" in run.status_line()
    assert f"{run.steps_done} of {run.total_steps}" in run.status_line()
    assert 0 < run.steps_done < run.total_steps


def test_a_preempted_run_reads_as_preempted(preempted_run):
    run = load(preempted_run)
    attrs = h5raw.root(preempted_run)
    assert run.status == "preempted"
    line = run.status_line()
    assert "preempted" in line and "not complete" in line
    assert f"checkpoint at step {attrs['checkpoint_step']}" in line


def test_a_failed_run_shows_its_error(failed_run):
    run = load(failed_run)
    attrs = h5raw.root(failed_run)
    assert run.status == "failed"
    assert attrs["error_message"] and attrs["error_message"] in run.status_line()


def test_a_resumed_run_has_two_sessions_and_every_step_once(resumed_run):
    run = load(resumed_run)
    sessions = h5raw.columns(resumed_run, "sessions")
    assert run.sessions["from_step"].tolist() == sessions["from_step"]
    assert len(sessions["from_step"]) == 2 and 0 < sessions["from_step"][1] < run.total_steps
    assert run.metrics["step"].tolist() == list(range(1, run.total_steps + 1))
    assert run.is_complete
    # Each evaluation once, numbered in the order of the steps, across the two sessions: the
    # latest evaluation is the one with the highest index.
    summary = run.eval_summary
    steps = summary.groupby("eval_index")["step"].agg(["nunique", "first"])
    assert (steps["nunique"] == 1).all()
    assert steps.index.tolist() == list(range(len(steps)))
    assert steps["first"].is_monotonic_increasing
    assert run.eval_table()["step"].iloc[0] == summary["step"].max()


def test_tables_of_a_run_resumed_since_it_was_loaded_are_refused(resumed_live):
    (before,) = resumed_live.reads
    assert before.status == "preempted" and before.steps_done < before.total_steps
    # The resume dropped and rewrote steps: rows read now would not match the header read then.
    with pytest.raises(ResultsFileError, match="resumed after this file was loaded; load it again"):
        before.metrics
    assert load(resumed_live.path).is_complete


def test_a_run_read_while_it_goes_is_running_and_consistent(preempted_live):
    # The analysis loaded the file again and again while alignpro wrote it.
    assert preempted_live.reads, "the run was never read while it went on"
    for status, done, rows, top, line in preempted_live.reads:
        assert status == "running"
        assert "not complete" in line and f"{done} of " in line
        # Only committed steps, each once: one metrics row per step done.
        assert rows == done and top == done


@pytest.fixture
def copy_of(tmp_path, main_run):
    def make(name):
        path = tmp_path / name
        shutil.copy(main_run, path)
        return path

    return make


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "alignpro_analysis", *map(str, args)], capture_output=True, text=True
    )


def test_rows_of_a_step_past_steps_done_are_dropped(copy_of):
    # What a writer killed between the tables' row counts and steps_done leaves: the last
    # step's rows are counted, but the step is not done.
    path = copy_of("uncommitted.h5")
    with h5py.File(path, "r+") as f:
        last = int(f.attrs["steps_done"])
        f.attrs["steps_done"] = np.int64(last - 1)
    stored = h5raw.columns(path, "metrics", committed_only=False)
    with h5py.File(path, "r") as f:
        counted = int(f["metrics"].attrs["rows"])
    assert max(stored["step"][:counted]) == last
    run = load(path)
    assert run.steps_done == last - 1
    assert run.metrics["step"].tolist() == list(range(1, last))
    for table in ("samples", "timings", "pool/distribution", "eval/summary"):
        assert (run.table(table)["step"] < last).all(), table
    assert len(run.samples) == len(h5raw.columns(path, "samples")["step"])


def test_an_unknown_format_version_is_refused_naming_file_and_version(copy_of):
    path = copy_of("future.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = np.int64(99)
    with pytest.raises(ResultsFileError) as error:
        load(path)
    assert str(path) in str(error.value) and "version 99" in str(error.value)
    result = cli("report", path, "-o", path.parent / "out")
    assert result.returncode == 2
    assert "version 99" in result.stderr and str(path) in result.stderr
    assert not (path.parent / "out").exists()


def test_a_file_of_another_kind_is_refused(copy_of, tmp_path):
    path = copy_of("other.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ResultsFileError, match="not an alignpro results file"):
        load(path)
    text = tmp_path / "notes.h5"
    text.write_text("not HDF5 at all\n")
    with pytest.raises(ResultsFileError, match="not an HDF5 file"):
        load(text)
    with pytest.raises(ResultsFileError, match="no such file"):
        load(tmp_path / "missing.h5")
