"""`compare`: runs side by side and paired win rates on shared prompts, checked against h5py."""

from __future__ import annotations

import subprocess
import sys

import pytest

import h5raw
from alignpro_analysis import load, plots
from alignpro_analysis import markdown as md
from alignpro_analysis.compare import compare, paired_table, run_labels


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "alignpro_analysis", *map(str, args)], capture_output=True, text=True
    )


def independent_win_rate(path_a, path_b, condition, decoding):
    """Win rate of A over B from the raw evaluation samples: same prompt index, prompt text and
    decoding; ties count half."""
    a = {
        s["prompt_index"]: s
        for s in h5raw.latest_eval_samples(path_a)
        if s["condition"] == condition and s["decoding"] == decoding
    }
    b = {
        s["prompt_index"]: s
        for s in h5raw.latest_eval_samples(path_b)
        if s["condition"] == condition and s["decoding"] == decoding
    }
    shared = [i for i in a if i in b and a[i]["prompt"] == b[i]["prompt"]]
    scores = [
        1.0 if a[i]["reward"] > b[i]["reward"] else 0.5 if a[i]["reward"] == b[i]["reward"] else 0.0
        for i in shared
    ]
    return len(shared), sum(scores) / len(scores)


def test_paired_win_rates_match_the_samples(main_run, second_run):
    runs = [load(main_run), load(second_run)]
    rows = paired_table(runs, run_labels(runs))
    assert rows, "the runs share their held-out prompts, so there must be paired rows"
    seen = set()
    for condition, decoding, a, b, result in rows:
        n, rate = independent_win_rate(main_run, second_run, condition, decoding)
        assert result.n == n > 0
        assert result.win_rate == pytest.approx(rate, abs=1e-12)
        assert result.ci_low <= result.win_rate <= result.ci_high
        seen.add((condition, decoding))
    assert ("align-pro", "greedy") in seen and ("none", "sampled") in seen


def test_compare_command_prints_both_runs_and_the_pairs(main_run, second_run, tmp_path):
    result = cli("compare", main_run, second_run, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    runs = [load(main_run), load(second_run)]
    labels = run_labels(runs)
    assert labels == ["main", "second"]
    for run, label in zip(runs, labels):
        m = h5raw.columns(run.path, "metrics")
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} | complete |"))
        assert f"| {md.number(m['reward_mean'][-1])} |" in row
    n, rate = independent_win_rate(main_run, second_run, "align-pro", "greedy")
    pair = next(
        line
        for line in text.splitlines()
        if line.startswith("| Align-Pro | greedy | main | second |")
    )
    assert f"| {n} | {md.number(rate)} [" in pair
    assert (tmp_path / "compare.md").read_text(encoding="utf-8") in text
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_compare_marks_runs_that_are_not_complete(main_run, preempted_run):
    text = compare([load(main_run), load(preempted_run)])
    row = next(line for line in text.splitlines() if line.startswith("| preempted |"))
    assert "**preempted** (not complete)" in row


def test_compare_latest_evaluation_means_are_the_files(main_run, second_run):
    text = compare([load(main_run), load(second_run)])
    for path in (main_run, second_run):
        summary = h5raw.columns(path, "eval/summary")
        latest = max(summary["eval_index"])
        for i, e in enumerate(summary["eval_index"]):
            if e == latest:
                cell = md.interval(
                    summary["mean"][i], summary["mean_ci_low"][i], summary["mean_ci_high"][i]
                )
                label = plots.condition_label(summary["condition"][i])
                line = next(
                    l
                    for l in text.splitlines()
                    if l.startswith(f"| {label} | {summary['decoding'][i]} |")
                )
                assert cell in line


def test_compare_figure_passes_the_figure_checks(main_run, killed_run, tmp_path, checked_figures):
    compare([load(main_run), load(killed_run)], tmp_path)
    assert checked_figures == ["compare.png"]
