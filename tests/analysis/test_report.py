"""`report`: the figures and the Markdown report of one run, checked against the file."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

import h5raw
from alignpro_analysis import load, plots
from alignpro_analysis import markdown as md
from alignpro_analysis.report import report

FIGURES = ["training", "evaluation", "reward_distributions", "timings", "pool"]


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "alignpro_analysis", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def main_report(main_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = cli("report", main_run, "-o", out)
    assert result.returncode == 0, result.stderr
    return out, (out / "report.md").read_text(encoding="utf-8"), result.stdout


def test_report_writes_every_figure_as_a_real_png(main_report):
    out, _, stdout = main_report
    for name in FIGURES:
        path = out / f"{name}.png"
        assert f"wrote {path}" in stdout
        image = matplotlib.image.imread(path)
        height, width = image.shape[:2]
        assert width >= 600 and height >= 300, name
        # Not blank: a figure with curves and text has many distinct pixels.
        assert np.std(image[..., :3]) > 0.05, name


def test_report_states_the_status_and_settings(main_report, main_run):
    _, text, _ = main_report
    attrs = h5raw.root(main_run)
    assert f"{attrs['steps_done']} of {attrs['total_steps']} steps" in text
    assert "complete" in text and "not complete" not in text
    for line in attrs["job_text"].splitlines():
        assert line.replace("```", "'''") in text
    assert f"| format version | {attrs['format_version']} |" in text


def test_report_evaluation_table_has_the_files_numbers(main_report, main_run):
    _, text, _ = main_report
    summary = h5raw.columns(main_run, "eval/summary")
    latest = max(summary["eval_index"])
    rows = [i for i, e in enumerate(summary["eval_index"]) if e == latest]
    assert {summary["condition"][i] for i in rows} >= {"none", "align-pro"}
    lines = text.splitlines()
    for i in rows:
        cells = [
            md.interval(summary[c][i], summary[f"{c}_ci_low"][i], summary[f"{c}_ci_high"][i])
            for c in ("mean", "std", "win_rate", "gain")
        ]
        label = plots.condition_label(summary["condition"][i])
        expected = f"| {label} | {summary['decoding'][i]} | {summary['n'][i]} | " + " | ".join(
            cells
        )
        assert any(line.startswith(expected) for line in lines), expected


def test_report_shows_the_best_and_worst_rewrites_of_the_last_step(main_report, main_run):
    _, text, _ = main_report
    samples = h5raw.columns(main_run, "samples")
    last = max(samples["step"])
    rows = [i for i, s in enumerate(samples["step"]) if s == last]
    rewards = [samples["reward"][i] for i in rows]
    section = text.split("## Example rewrites", 1)[1].split("### Evaluation", 1)[0]
    best_part, worst_part = section.split("**Worst**", 1)
    for part, reward in [(best_part, max(rewards)), (worst_part, min(rewards))]:
        # The first example shown is a response of the last step with the extreme reward, with
        # that response's prompt, rewrite and text (several may share the reward).
        first = part.split("\n1. ", 1)[1].split("\n2. ", 1)[0]
        assert first.startswith(f"reward **{md.number(reward)}**")
        shown = [
            f"   - prompt: {md.text(samples['prompt'][i])}\n"
            f"   - rewrite: {md.text(samples['rewrite'][i])}\n"
            f"   - response: {md.text(samples['response'][i])}"
            for i in rows
            if samples["reward"][i] == reward
        ]
        assert any(entry in first for entry in shown)
    assert f"### Training, step {last} ({len(rows)} responses)" in text


def test_report_pool_table_has_the_last_distributions(main_report, main_run):
    _, text, _ = main_report
    text = text.split("## Pool prompter", 1)[1].split("\n## ", 1)[0]
    dist = h5raw.columns(main_run, "pool/distribution")
    last = max(dist["step"])
    for i in [i for i, s in enumerate(dist["step"]) if s == last]:
        row_start = f"| {dist['template'][i]} | "
        row = next(line for line in text.splitlines() if line.startswith(row_start))
        assert row.endswith(
            f"| {md.number(dist['trained'][i])} | {md.number(dist['rho_star'][i])} |"
        )


@pytest.mark.parametrize("which", ["killed_run", "preempted_run", "failed_run"])
def test_report_of_an_unfinished_run_says_so(request, which, tmp_path):
    path = request.getfixturevalue(which)
    attrs = h5raw.root(path)
    report(load(path), tmp_path)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert f"**Status: {attrs['status'].upper()}, not complete.**" in text
    assert f"| steps | {attrs['steps_done']} of {attrs['total_steps']} done |" in text
    if attrs["status"] == "failed":
        assert f"Error: {md.text(attrs['error_message'], limit=4096)}" in text


def test_report_command_says_a_killed_run_is_not_complete(killed_run, tmp_path):
    result = cli("report", killed_run, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{killed_run}: running")
    assert "not complete" in result.stdout.splitlines()[0]


@pytest.mark.parametrize("which", ["main_run", "killed_run"])
def test_figures_have_labels_units_legends_and_no_overlapping_text(
    request, which, tmp_path, checked_figures
):
    run = load(request.getfixturevalue(which))
    report(run, tmp_path)
    expected = {"training.png", "timings.png"}
    if which == "main_run":
        expected |= {"evaluation.png", "reward_distributions.png", "pool.png"}
    assert expected <= set(checked_figures)


def test_report_of_a_run_without_steps_says_what_is_missing(fresh_run, tmp_path):
    attrs = h5raw.root(fresh_run)
    assert attrs["steps_done"] == 0 and attrs["status"] == "running"
    _, figures = report(load(fresh_run), tmp_path)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "No training step is recorded yet." in text
    assert "not complete" in text
    # An evaluation before training, where the file has one, is shown and drawn.
    if h5raw.columns(fresh_run, "eval/summary")["eval_index"]:
        assert "Evaluation 0, after step 0" in text
        assert set(figures) == {"evaluation", "distributions"}
    else:
        assert "No evaluation is recorded yet." in text
        assert figures == {}
