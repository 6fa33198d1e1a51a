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


@pytest.mark.parametrize("which", ["main_run", "killed_run", "resumed_run", "uncommitted_run"])
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


def test_a_writer_killed_inside_a_commit_leaves_rows_the_loader_drops(uncommitted_run):
    attrs = h5raw.root(uncommitted_run)
    stored = h5raw.columns(uncommitted_run, "metrics", committed_only=False)
    # The killed commit had written the rows and the row counts, not steps_done.
    with h5py.File(uncommitted_run, "r", swmr=True) as f:
        counted = int(f["metrics"].attrs["rows"])
    assert max(stored["step"][:counted]) == attrs["steps_done"] + 1
    run = load(uncommitted_run)
    assert run.metrics["step"].max() == attrs["steps_done"]
    assert len(run.metrics) == counted - 1
    assert (run.samples["step"] <= attrs["steps_done"]).all()
    assert not run.is_complete


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
    assert len(run.sessions) == 2
    steps = run.metrics["step"].tolist()
    assert steps == list(range(1, run.total_steps + 1))
    assert run.is_complete


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
