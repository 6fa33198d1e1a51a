"""`compare A.h5 B.h5 ...`: runs side by side, with paired win rates on shared prompts."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from . import markdown as md
from . import plots
from .results import Run
from .stats import paired_win_rate, shared_prompts


def run_labels(runs: list[Run]) -> list[str]:
    """Short names for the runs: the job name, with the file's stem where names repeat."""
    names = [r.job_name or Path(r.path).stem for r in runs]
    labels = []
    for run, name in zip(runs, names):
        stem = Path(run.path).stem
        labels.append(name if names.count(name) == 1 else (stem if stem != name else run.path))
    if len(set(labels)) < len(labels):
        labels = [run.path for run in runs]
    return labels


def _overview(runs, labels) -> str:
    rows = []
    for run, label in zip(runs, labels):
        m = run.metrics
        if m.empty:
            last = tail = kl = speed = total = float("nan")
        else:
            last = m["reward_mean"].iloc[-1]
            tail = m["reward_mean"].tail(max(1, len(m) // 10)).mean()
            kl = m["kl_mean"].iloc[-1]
            speed = m["tokens_per_s"].median()
            total = m["step_s"].sum()
        rows.append(
            [
                md.text(label),
                run.status if run.is_complete else f"**{run.status}** (not complete)",
                f"{run.steps_done}/{run.total_steps}",
                run.world_size,
                md.number(last),
                md.number(tail),
                md.number(kl, 4),
                md.number(speed, 1),
                md.number(total, 1),
            ]
        )
    header = [
        "run",
        "status",
        "steps",
        "ranks",
        "reward, last step",
        "reward, last 10% of steps",
        "KL, last step (nats)",
        "tokens/s (median)",
        "step time in all (s)",
    ]
    return md.table(header, rows, "llrrrrrrr")


def _evaluations(runs, labels) -> str:
    tables = [run.eval_table() for run in runs]
    if all(t.empty for t in tables):
        return "No run has an evaluation yet."
    keys = []
    for t in tables:
        for r in t.itertuples():
            if (r.condition, r.decoding) not in keys:
                keys.append((r.condition, r.decoding))
    order = plots.conditions_in_order([k[0] for k in keys])
    keys.sort(key=lambda k: (k[1], order.index(k[0])))
    lines = []
    for column, what in [("mean", "Mean reward"), ("win_rate", "Win rate against no optimisation")]:
        rows = []
        for condition, decoding in keys:
            row = [md.text(plots.condition_label(condition)), md.text(decoding)]
            for t in tables:
                hit = (
                    t[(t["condition"] == condition) & (t["decoding"] == decoding)]
                    if not t.empty
                    else t
                )
                if hit.empty:
                    row.append("–")
                else:
                    r = hit.iloc[0]
                    row.append(
                        md.interval(r[column], r[f"{column}_ci_low"], r[f"{column}_ci_high"])
                    )
            rows.append(row)
        steps = ", ".join(
            f"{md.text(label)} after step {int(t['step'].iloc[0])}"
            for label, t in zip(labels, tables)
            if not t.empty
        )
        lines += [
            f"{what} in each run's latest evaluation ({steps}), with the intervals the runs "
            "recorded:",
            "",
            md.table(
                ["condition", "decoding", *[md.text(l) for l in labels]],
                rows,
                "ll" + "r" * len(labels),
            ),
            "",
        ]
    return "\n".join(lines).rstrip()


def paired_table(runs, labels, confidence=0.95):
    """Rows of (condition, decoding, A, B, comparison) for every pair of runs and every
    condition and decoding both evaluated, on the prompts both evaluated."""
    latest = []
    for run in runs:
        samples = run.eval_samples
        if not samples.empty:
            samples = samples[samples["eval_index"] == samples["eval_index"].max()]
        latest.append(samples)
    out = []
    for i, j in combinations(range(len(runs)), 2):
        a, b = latest[i], latest[j]
        if a.empty or b.empty:
            continue
        for condition in plots.conditions_in_order(set(a["condition"]) & set(b["condition"])):
            joined = shared_prompts(a[a["condition"] == condition], b[b["condition"] == condition])
            for decoding in dict.fromkeys(joined["decoding"]):
                pair = joined[joined["decoding"] == decoding]
                result = paired_win_rate(pair["reward_a"], pair["reward_b"], confidence=confidence)
                out.append((condition, decoding, labels[i], labels[j], result))
    return out


def _paired(runs, labels) -> str:
    rows = paired_table(runs, labels)
    if not rows:
        return (
            "No two runs evaluated the same prompts (same held-out prompt index, text and "
            "decoding)."
        )
    body = [
        [
            md.text(plots.condition_label(condition)),
            md.text(decoding),
            md.text(a),
            md.text(b),
            r.n,
            md.interval(r.win_rate, r.ci_low, r.ci_high),
            md.number(r.mean_difference),
        ]
        for condition, decoding, a, b, r in rows
    ]
    return "\n".join(
        [
            "How often run A's response beats run B's on the same held-out prompt, in each run's "
            "latest evaluation (ties count half; 95% percentile bootstrap over prompts):",
            "",
            md.table(
                [
                    "condition",
                    "decoding",
                    "run A",
                    "run B",
                    "shared prompts",
                    "win rate of A",
                    "mean reward A - B",
                ],
                body,
                "llllrrr",
            ),
        ]
    )


def comparison_figure(runs, labels, path: Path) -> Path | None:
    if all(r.metrics.empty for r in runs):
        return None
    fig, axes = plots._figure(1, 2, 12, 4.6, f"{len(runs)} runs compared")
    ax = axes[0, 0]
    for i, (run, label) in enumerate(zip(runs, labels)):
        m = run.metrics
        if m.empty:
            continue
        status = "" if run.is_complete else f" [{run.status}]"
        ax.plot(m["step"], m["reward_mean"], color=f"C{i}", label=f"{label}{status}")
    ax.set_xlabel("training step")
    ax.set_ylabel(
        plots.axis_label("mean reward per response", runs[0].unit("metrics", "reward_mean"))
    )
    ax.set_title("Training reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax = axes[0, 1]
    tables = [run.eval_table() for run in runs]
    decodings = list(dict.fromkeys(d for t in tables if not t.empty for d in t["decoding"]))
    if decodings:
        width = 0.8 / len(runs)
        for i, (t, label) in enumerate(zip(tables, labels)):
            if t.empty:
                continue
            rows = t[t["condition"] == "align-pro"].set_index("decoding").reindex(decodings)
            present = rows["mean"].notna().to_numpy()
            x = np.arange(len(decodings)) + (i - (len(runs) - 1) / 2) * width
            ax.bar(
                x[present],
                rows["mean"].to_numpy()[present],
                width,
                yerr=plots._error(rows[present], "mean"),
                capsize=4,
                color=f"C{i}",
                label=label,
            )
        ax.set_xticks(np.arange(len(decodings)), decodings)
        ax.set_xlabel("decoding of the target's responses")
        ax.legend(loc="lower right", fontsize="small")
    ax.set_ylabel(plots.axis_label("mean reward, Align-Pro", runs[0].unit("eval/summary", "mean")))
    ax.set_title("Latest evaluation (95% intervals)")
    ax.grid(axis="y", alpha=0.3)
    return plots._save(fig, path)


def compare(runs: list[Run], out: Path | None = None) -> str:
    """The comparison as Markdown; with out, also compare.md and compare.png there."""
    labels = run_labels(runs)
    figure = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figure = comparison_figure(runs, labels, out / "compare.png")
    parts = [
        f"# Comparison of {len(runs)} runs",
        "\n".join(
            f"- {md.text(label)}: {md.text(run.path)}, {md.text(run.status_line())}"
            for run, label in zip(runs, labels)
        ),
        "## Final metrics",
        _overview(runs, labels),
        "## Evaluation",
        _evaluations(runs, labels),
        "## Paired win rates on shared prompts",
        _paired(runs, labels),
    ]
    if figure is not None:
        parts.append(f"![Comparison]({figure.name})")
    text = "\n\n".join(parts) + "\n"
    if out is not None:
        (out / "compare.md").write_text(text, encoding="utf-8")
    return text
