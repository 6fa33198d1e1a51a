"""Figures of one run. Every function draws one PNG and returns its path, or None when the run
has nothing to show for it (no evaluation yet, not a pool prompter, ...)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .results import PHASES, Run  # noqa: E402

DPI = 110
CONDITION_COLOURS = {"none": "#7f7f7f", "align-pro": "#1f77b4", "rlhf": "#d62728"}
CONDITION_NAMES = {"none": "no optimisation", "align-pro": "Align-Pro", "rlhf": "RLHF"}
PHASE_COLOURS = dict(
    zip(PHASES, ["#9467bd", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#bbbbbb"])
)


def unit_text(unit: str) -> str:
    """An axis unit in words: the file's unit, 'reward' read as reward units."""
    if not unit:
        return "dimensionless"
    return {"reward": "reward units", "s": "seconds", "probability": "0 to 1"}.get(unit, unit)


def axis_label(what: str, unit: str) -> str:
    return f"{what} ({unit_text(unit)})"


def phase_label(phase: str) -> str:
    return phase.replace("_", " ")


def condition_label(condition: str) -> str:
    return CONDITION_NAMES.get(condition, condition)


def condition_colour(condition: str, index: int = 0) -> str:
    return CONDITION_COLOURS.get(condition, f"C{index + 2}")


def conditions_in_order(conditions) -> list[str]:
    known = [c for c in CONDITION_NAMES if c in set(conditions)]
    return known + sorted(set(conditions) - set(known))


def _figure(rows, cols, width, height, title):
    fig, axes = plt.subplots(
        rows, cols, figsize=(width, height), layout="constrained", squeeze=False
    )
    fig.suptitle(title)
    return fig, axes


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _run_title(run: Run, what: str) -> str:
    status = "" if run.is_complete else f" [{run.status}, {run.steps_done}/{run.total_steps} steps]"
    return f"{run.job_name}: {what}{status}"


def _curve(ax, x, y, colour, marker, label):
    """A per-step curve; a long, noisy one gets a rolling mean drawn over it."""
    window = len(y) // 25
    if window < 3:
        ax.plot(x, y, color=colour, marker=marker, ms=3, label=label)
        return
    ax.plot(x, y, color=colour, alpha=0.3, lw=1, label=f"{label}, per step")
    smooth = pd.Series(y).rolling(window, center=True, min_periods=1).mean()
    ax.plot(x, smooth, color=colour, lw=2, label=f"{label}, rolling mean of {window} steps")


def training_curves(run: Run, path: Path) -> Path | None:
    """Reward (mean with a one-std band), KL, loss and gradient norm per step."""
    m = run.metrics
    if m.empty:
        return None
    units = run.units("metrics")
    marker = "o" if len(m) <= 40 else None
    fig, axes = _figure(2, 2, 10, 7, _run_title(run, "training"))
    step = m["step"].to_numpy()
    ax = axes[0, 0]
    mean, std = m["reward_mean"].to_numpy(), m["reward_std"].to_numpy()
    ax.fill_between(step, mean - std, mean + std, color="C0", alpha=0.2, label="± 1 std")
    _curve(ax, step, mean, "C0", marker, "mean")
    ax.set_ylabel(axis_label("reward per response", units.get("reward_mean", "")))
    ax.set_title("Reward of the step's responses")
    ax.legend(loc="best")
    panels = [
        (
            axes[0, 1],
            "kl_mean",
            "KL(prompter || reference)",
            "KL to the reference, mean per rewrite",
        ),
        (axes[1, 0], "loss", "loss", "Training loss"),
        (axes[1, 1], "grad_norm", "gradient norm", "Gradient norm before clipping"),
    ]
    for colour, (ax, column, what, title) in zip(["C1", "C2", "C3"], panels):
        _curve(ax, step, m[column].to_numpy(), colour, marker, what)
        ax.set_ylabel(axis_label(what, units.get(column, "")))
        ax.set_title(title)
        ax.legend(loc="best")
    for ax in axes.flat:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _error(frame: pd.DataFrame, column: str) -> np.ndarray:
    value = frame[column].to_numpy()
    return np.vstack(
        [
            value - frame[f"{column}_ci_low"].to_numpy(),
            frame[f"{column}_ci_high"].to_numpy() - value,
        ]
    ).clip(min=0)


def evaluation_bars(run: Run, path: Path) -> Path | None:
    """Mean reward and win rate against no optimisation per condition and decoding, with the
    intervals of the latest evaluation; and every evaluation's mean reward over training."""
    table = run.eval_table()
    if table.empty:
        return None
    summary = run.eval_summary
    several = summary["eval_index"].nunique() > 1
    fig, axes = _figure(1, 3 if several else 2, 15 if several else 10, 4.6, "")
    level = int(round(100 * float(table["confidence"].iloc[0])))
    fig.suptitle(
        _run_title(
            run,
            f"evaluation {int(table['eval_index'].iloc[0])} after step {int(table['step'].iloc[0])}"
            f" ({int(table['n'].max())} held-out prompts, {level}% intervals)",
        )
    )
    decodings = list(dict.fromkeys(table["decoding"]))
    conditions = conditions_in_order(table["condition"])
    width = 0.8 / len(conditions)
    units = run.units("eval/summary")
    for ax, column, what in [
        (axes[0, 0], "mean", "mean reward"),
        (axes[0, 1], "win_rate", "win rate against no optimisation"),
    ]:
        for i, condition in enumerate(conditions):
            rows = table[table["condition"] == condition].set_index("decoding")
            rows = rows.reindex(decodings)
            x = np.arange(len(decodings)) + (i - (len(conditions) - 1) / 2) * width
            present = rows[column].notna().to_numpy()
            ax.bar(
                x[present],
                rows[column].to_numpy()[present],
                width,
                yerr=_error(rows[present], column),
                capsize=4,
                color=condition_colour(condition, i),
                label=condition_label(condition),
            )
        ax.set_xticks(np.arange(len(decodings)), decodings)
        ax.set_xlabel("decoding of the target's responses")
        ax.set_ylabel(axis_label(what, units.get(column, "")))
        ax.set_title(f"{what[0].upper()}{what[1:]}, {level}% interval")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 1].axhline(0.5, color="black", lw=0.8, ls="--")
    axes[0, 1].set_ylim(0, 1.05)
    if several:
        ax = axes[0, 2]
        first = decodings[0]
        for i, condition in enumerate(conditions):
            rows = summary[(summary["condition"] == condition) & (summary["decoding"] == first)]
            colour = condition_colour(condition, i)
            ax.fill_between(
                rows["step"], rows["mean_ci_low"], rows["mean_ci_high"], color=colour, alpha=0.15
            )
            ax.plot(
                rows["step"],
                rows["mean"],
                marker="o",
                color=colour,
                label=condition_label(condition),
            )
        ax.set_xlabel("training steps done at the evaluation")
        ax.set_ylabel(axis_label("mean reward", units.get("mean", "")))
        ax.set_title(f"Every evaluation, {first} decoding ({level}% band)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    return _save(fig, path)


def reward_distributions(run: Run, path: Path) -> Path | None:
    """Per-prompt rewards of the latest evaluation: no optimisation against Align-Pro (and
    RLHF), one panel per decoding."""
    samples = run.eval_samples
    if samples.empty:
        return None
    latest = samples[samples["eval_index"] == samples["eval_index"].max()]
    decodings = list(dict.fromkeys(latest["decoding"]))
    conditions = conditions_in_order(latest["condition"])
    unit = run.unit("eval/samples", "reward")
    fig, axes = _figure(1, len(decodings), 5.5 * len(decodings), 4.4, "")
    fig.suptitle(
        _run_title(
            run, f"reward distributions, evaluation after step {int(latest['step'].iloc[0])}"
        )
    )
    values = np.sort(latest["reward"].unique())
    discrete = len(values) <= 12
    for ax, decoding in zip(axes.flat, decodings):
        rows = latest[latest["decoding"] == decoding]
        width = 0.8 / len(conditions)
        spacing = np.min(np.diff(values)) if len(values) > 1 else 1.0
        bins = np.histogram_bin_edges(latest["reward"], bins=20)
        for i, condition in enumerate(conditions):
            rewards = rows[rows["condition"] == condition]["reward"].to_numpy()
            if len(rewards) == 0:
                continue
            spread = rewards.std(ddof=1) if len(rewards) > 1 else 0.0
            label = f"{condition_label(condition)} (mean {rewards.mean():.3f}, std {spread:.3f})"
            colour = condition_colour(condition, i)
            if discrete:
                share = np.array([np.mean(rewards == v) for v in values])
                offset = (i - (len(conditions) - 1) / 2) * width * spacing
                ax.bar(values + offset, share, width * spacing, color=colour, label=label)
            else:
                # A light fill under a solid outline, each bar the share of the prompts.
                shares = {"bins": bins, "weights": np.full(len(rewards), 1 / len(rewards))}
                ax.hist(rewards, histtype="stepfilled", alpha=0.25, color=colour, **shares)
                ax.hist(rewards, histtype="step", lw=1.5, color=colour, label=label, **shares)
            ax.axvline(rewards.mean(), color=colour, ls="--", lw=1)
        ax.set_xlabel(axis_label("reward per held-out prompt", unit))
        ax.set_ylabel("share of prompts (fraction)")
        ax.set_title(f"{decoding} decoding (dashed: means)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
        ax.set_ylim(0, 1.25 * ax.get_ylim()[1])
    return _save(fig, path)


def _stacked(ax, x, frame: pd.DataFrame, width, areas: bool = False):
    """Phases stacked: bars, or areas where there are too many steps for bars."""
    phases = [p for p in PHASES if f"{p}_s" in frame.columns]
    if areas:
        ax.stackplot(
            x,
            *[frame[f"{p}_s"].to_numpy() for p in phases],
            colors=[PHASE_COLOURS[p] for p in phases],
            labels=[phase_label(p) for p in phases],
            step="mid",
        )
        return
    bottom = np.zeros(len(frame))
    for phase in phases:
        values = frame[f"{phase}_s"].to_numpy()
        ax.bar(
            x, values, width, bottom=bottom, color=PHASE_COLOURS[phase], label=phase_label(phase)
        )
        bottom += values


def phase_times(run: Run, path: Path) -> Path | None:
    """Seconds per phase per step (mean over ranks), and per rank (mean over steps)."""
    timings = run.timings
    if timings.empty:
        return None
    per_step = run.phase_seconds()
    columns = [c for c in per_step.columns if c != "step"]
    per_rank = timings.groupby("rank")[columns].mean().reset_index()
    fig, axes = _figure(1, 2, 12, 4.6, _run_title(run, "where the time goes"))
    fig.get_layout_engine().set(w_pad=0.1)
    ax = axes[0, 0]
    _stacked(ax, per_step["step"].to_numpy(), per_step, 0.8, areas=len(per_step) > 60)
    ax.set_xlabel("training step")
    ax.set_ylabel("wall time per step, mean over ranks (seconds)")
    ax.set_title("Time per phase and step")
    ax = axes[0, 1]
    _stacked(ax, per_rank["rank"].to_numpy(), per_rank, 0.6)
    ax.set_xlabel("MPI rank")
    ax.set_xticks(per_rank["rank"].to_numpy())
    ax.set_ylabel("wall time per step, mean over steps (seconds)")
    ax.set_title(f"Time per phase and rank ({run.world_size} ranks)")
    for ax in axes.flat:
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside right upper", title="phase")
    return _save(fig, path)


def pool_distributions(run: Run, path: Path) -> Path | None:
    """For a pool prompter: the trained distribution against rho* and the reference at the last
    step, and their distances over training."""
    distribution, steps = run.pool_distribution, run.pool_steps
    if distribution.empty or steps.empty:
        return None
    templates = run.pool_templates.set_index("template")
    last = distribution[distribution["step"] == distribution["step"].max()].sort_values("template")
    reference = templates["reference"].reindex(last["template"]).to_numpy()
    texts = templates["text"].reindex(last["template"]).fillna("")
    fig = plt.figure(figsize=(12, 7.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    fig.suptitle(_run_title(run, f"pool prompter at step {int(last['step'].iloc[0])}"))
    ax = top.subplots()
    y = np.arange(len(last))
    height = 0.27
    ax.barh(y - height, reference, height, color="#bbbbbb", label="reference rho_ref")
    ax.barh(y, last["trained"], height, color="C0", label="trained rho")
    ax.barh(y + height, last["rho_star"], height, color="C1", label="optimum rho*")
    labels = [
        f"{i}: " + textwrap.shorten(t, 48, placeholder="...")
        for i, t in zip(last["template"], texts)
    ]
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_ylabel("template of the pool (index: text)")
    ax.set_xlabel(
        axis_label("probability of the template", run.unit("pool/distribution", "trained"))
    )
    ax.set_title("Distribution over the pool's templates (rho* from the estimated rewards)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    units = run.units("pool/steps")
    left, right = bottom.subplots(1, 2)
    marker = "o" if len(steps) <= 40 else None
    left.plot(
        steps["step"], steps["total_variation"], marker=marker, ms=3, label="TV(trained, rho*)"
    )
    left.set_ylabel(axis_label("total variation distance", units.get("total_variation", "")))
    left.set_title("Distance of the trained prompter to rho*")
    right.plot(
        steps["step"],
        steps["kl_trained_reference"],
        marker=marker,
        ms=3,
        label="KL(trained || reference)",
    )
    right.plot(
        steps["step"], steps["kl_rho_star_reference"], ls="--", label="KL(rho* || reference)"
    )
    right.set_ylabel(axis_label("KL divergence", units.get("kl_trained_reference", "")))
    right.set_title("KL to the reference: trained prompter and rho*")
    for ax in (left, right):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    return _save(fig, path)
