"""`scaling`: throughput, speedup, efficiency and the communication model, checked against the
files' own step times and timings."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import h5raw
from conftest import SCALING_SIZES
from alignpro_analysis import load
from alignpro_analysis import markdown as md
from alignpro_analysis.scaling import ScalingError, scaling


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "alignpro_analysis", *map(str, args)], capture_output=True, text=True
    )


def measured(path):
    """World size, units/s and mean communication seconds per step, from h5py, leaving out the
    first step as the analysis does."""
    attrs = h5raw.root(path)
    m = h5raw.columns(path, "metrics")
    t = h5raw.columns(path, "timings")
    keep = m["step"][1:]
    units = sum(u for s, u in zip(m["step"], m["units"]) if s in keep)
    seconds = sum(x for s, x in zip(m["step"], m["step_s"]) if s in keep)
    comm = [np.mean([c for s2, c in zip(t["step"], t["communication_s"]) if s2 == s]) for s in keep]
    return attrs["world_size"], units / seconds, float(np.mean(comm)), m["units"][0]


def test_strong_scaling_numbers_are_the_files(strong_runs, tmp_path, checked_figures):
    text, table, projection, comm = scaling([load(p) for p in strong_runs], tmp_path)
    assert "# Scaling study: strong scaling" in text
    expected = [measured(p) for p in strong_runs]
    assert table["world_size"].tolist() == [e[0] for e in expected] == list(SCALING_SIZES)
    base = expected[0][1]
    for row, (p, throughput, comm_s, _) in zip(table.itertuples(), expected):
        assert row.units_per_s == pytest.approx(throughput, rel=1e-12)
        assert row.speedup == pytest.approx(throughput / base, rel=1e-12)
        assert row.efficiency == pytest.approx(throughput / base / p, rel=1e-12)
        assert row.communication_s == pytest.approx(comm_s, rel=1e-12)
        assert f"| {p} | " in text and md.number(row.efficiency, 3) in text
    # Strong scaling projects no further than one work unit per rank.
    assert projection["world_size"].max() <= expected[0][3]
    assert "Projection (a model fitted to the runs above, not a measurement)" in text
    for name in ("scaling.png", "scaling_phases.png", "scaling_comm.png", "scaling.md"):
        assert (tmp_path / name).stat().st_size > 1000
    assert checked_figures == ["scaling.png", "scaling_phases.png", "scaling_comm.png"]


def test_weak_scaling_is_detected_and_its_efficiency_is_the_step_time_ratio(weak_runs):
    text, table, projection, _ = scaling([load(p) for p in weak_runs])
    assert "# Scaling study: weak scaling" in text
    steps = []
    for path in weak_runs:
        m = h5raw.columns(path, "metrics")
        steps.append(np.mean(m["step_s"][1:]))
    for row, step in zip(table.itertuples(), steps):
        assert row.efficiency == pytest.approx(steps[0] / step, rel=1e-9)
    assert projection["world_size"].min() > max(SCALING_SIZES)


def test_the_communication_fit_is_a_least_squares_minimum(strong_runs):
    _, table, _, comm = scaling([load(p) for p in strong_runs])
    p = table["world_size"].to_numpy(float)
    t = table["communication_s"].to_numpy(float)

    def error(alpha, b):
        return np.sum((alpha * np.log2(p) + b * (p - 1) / p - t) ** 2)

    assert comm.alpha >= 0 and comm.b >= 0
    best = error(comm.alpha, comm.b)
    assert comm.residual == pytest.approx(np.sqrt(best / len(p)), rel=1e-9)
    scale = max(comm.alpha, comm.b, 1e-6)
    for da, db in [(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)]:
        alpha, b = comm.alpha + 0.01 * scale * da, comm.b + 0.01 * scale * db
        if alpha >= 0 and b >= 0:
            assert error(alpha, b) >= best - 1e-15


def test_a_mix_of_strong_and_weak_runs_is_refused(strong_runs, weak_runs):
    # The strong runs' work at one rank and the weak runs' at two: neither the same work per step
    # nor the same per rank.
    mixed = [strong_runs[0], weak_runs[-1]]
    with pytest.raises(ScalingError, match="neither strong scaling"):
        scaling([load(p) for p in mixed])
    result = cli("scaling", *mixed)
    assert result.returncode == 2 and "neither strong scaling" in result.stderr


def test_scaling_command_writes_its_files(weak_runs, tmp_path):
    result = cli("scaling", *weak_runs, "-o", tmp_path, "--bytes", "16")
    assert result.returncode == 0, result.stderr
    assert "weak scaling" in result.stdout and "beta =" in result.stdout
    assert (tmp_path / "scaling.md").read_text(encoding="utf-8") in result.stdout
