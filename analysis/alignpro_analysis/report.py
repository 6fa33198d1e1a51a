"""`report RUN.h5`: the figures of one run and a Markdown report around them."""

from __future__ import annotations

from pathlib import Path

from . import markdown as md
from . import plots
from .results import Run

KEY_SETTINGS = [
    "run.mode",
    "run.steps",
    "run.seed",
    "prompter.kind",
    "prompter.model",
    "prompter.candidates",
    "target.model",
    "target.samples",
    "reward.kind",
    "reward.model",
    "optim.batch_prompts",
    "optim.lr",
    "optim.kl_coef",
    "optim.kl_mode",
    "eval.every",
    "eval.prompts",
    "eval.rlhf_target",
]


def _header(run: Run) -> str:
    a = run.attrs
    lines = [f"# Run report: {md.text(run.job_name)}", ""]
    if run.is_complete:
        lines.append(f"**Status:** {md.text(run.status_line())}")
    else:
        lines.append(
            f"> **Status: {run.status.upper()}, not complete.** {md.text(run.status_line())}"
        )
        if run.error_message:
            lines += ["", f"Error: {md.text(run.error_message, limit=4096)}"]
    lines.append("")
    checkpoint = (
        f"step {run.checkpoint_step} ({md.text(a.get('checkpoint_file', ''))})"
        if run.checkpoint_step >= 0
        else "none"
    )
    rows = [
        ["file", md.text(Path(run.path).name)],
        ["format version", run.format_version],
        [
            "alignpro",
            f"{md.text(a.get('alignpro_version', '?'))} "
            f"(git {md.text(a.get('git_revision', '?'))})",
        ],
        ["job hash", md.text(a.get("job_hash", ""))],
        ["steps", f"{run.steps_done} of {run.total_steps} done"],
        ["world size", f"{run.world_size} ranks on {md.text(', '.join(sorted(set(run.hosts))))}"],
        ["started", md.text(a.get("start_time", ""))],
        ["last update", md.text(a.get("last_update", ""))],
        ["newest checkpoint", checkpoint],
        ["sessions", len(run.sessions)],
    ]
    lines.append(md.table(["", ""], rows))
    sessions = run.sessions
    if len(sessions) > 1:
        lines += ["", "Sessions (the first start and every resume):", ""]
        lines.append(
            md.table(
                ["session", "started", "from step", "ranks", "alignpro"],
                [
                    [
                        s.session,
                        md.text(s.start_time),
                        s.from_step,
                        s.world_size,
                        md.text(s.alignpro_version),
                    ]
                    for s in sessions.itertuples()
                ],
                "rlrrl",
            )
        )
    return "\n".join(lines)


def _settings(run: Run) -> str:
    lines = [
        "## Settings",
        "",
        "The main settings the job file sets (the others take their defaults), as the file was "
        "written: overrides given with `--set` are not recorded in the results file.",
        "",
    ]
    rows = []
    for key in KEY_SETTINGS:
        value = run.setting(key)
        if value is not None:
            rows.append([f"`{key}`", md.text(value)])
    if rows:
        lines += [md.table(["setting", "value"], rows), ""]
    lines += [
        "<details><summary>The job file</summary>",
        "",
        "```toml",
        run.job_text.rstrip().replace("```", "'''"),
        "```",
        "",
        "</details>",
    ]
    return "\n".join(lines)


def _training(run: Run, figures: dict) -> str:
    m = run.metrics
    lines = ["## Training", ""]
    if m.empty:
        return "\n".join(lines + ["No training step is recorded yet."])
    last = m.iloc[-1]
    tail = m.tail(min(len(m), max(5, len(m) // 10)))
    units = run.units("metrics")
    rows = []
    for column, what in [
        ("reward_mean", "mean reward"),
        ("reward_std", "reward standard deviation"),
        ("kl_mean", "KL to the reference"),
        ("loss", "loss"),
        ("grad_norm", "gradient norm"),
        ("tokens_per_s", "throughput"),
        ("step_s", "step time"),
    ]:
        unit = plots.unit_text(units.get(column, ""))
        rows.append([what, unit, md.number(last[column], 4), md.number(tail[column].mean(), 4)])
    lines.append(
        md.table(
            [
                "metric",
                "unit",
                f"last step ({int(last['step'])})",
                f"mean of the last {len(tail)} steps",
            ],
            rows,
            "llrr",
        )
    )
    total = m["step_s"].sum()
    lines += ["", f"{len(m)} steps recorded, {md.number(total, 1)} s of step time in all.", ""]
    for key, caption in [("training", "Training curves"), ("timings", "Time per phase")]:
        if figures.get(key):
            lines += [f"![{caption}]({figures[key].name})", ""]
    return "\n".join(lines).rstrip()


def _evaluation(run: Run, figures: dict) -> str:
    lines = ["## Evaluation", ""]
    table = run.eval_table()
    if table.empty:
        return "\n".join(lines + ["No evaluation is recorded yet."])
    level = int(round(100 * float(table["confidence"].iloc[0])))
    lines.append(
        f"Evaluation {int(table['eval_index'].iloc[0])}, after step {int(table['step'].iloc[0])}; "
        f"{level}% intervals in brackets. Win rate and gain are against no optimisation on the "
        "same prompts."
    )
    lines.append("")
    order = plots.conditions_in_order(table["condition"])
    table = table.assign(_order=table["condition"].map(order.index)).sort_values(
        ["decoding", "_order"]
    )
    rows = [
        [
            md.text(plots.condition_label(r.condition)),
            md.text(r.decoding),
            r.n,
            md.interval(r.mean, r.mean_ci_low, r.mean_ci_high),
            md.interval(r.std, r.std_ci_low, r.std_ci_high),
            md.interval(r.win_rate, r.win_rate_ci_low, r.win_rate_ci_high),
            md.interval(r.gain, r.gain_ci_low, r.gain_ci_high),
        ]
        for r in table.itertuples()
    ]
    lines.append(
        md.table(
            ["condition", "decoding", "prompts", "mean reward", "reward std", "win rate", "gain"],
            rows,
            "llrrrrr",
        )
    )
    summary = run.eval_summary
    if summary["eval_index"].nunique() > 1:
        lines += ["", "Every evaluation of the run (Align-Pro against no optimisation):", ""]
        pro = summary[summary["condition"] == "align-pro"]
        rows = [
            [
                r.eval_index,
                r.step,
                md.text(r.decoding),
                md.number(r.mean),
                md.interval(r.gain, r.gain_ci_low, r.gain_ci_high),
                md.interval(r.win_rate, r.win_rate_ci_low, r.win_rate_ci_high),
            ]
            for r in pro.itertuples()
        ]
        lines.append(
            md.table(
                ["evaluation", "after step", "decoding", "mean reward", "gain", "win rate"],
                rows,
                "rrlrrr",
            )
        )
    lines.append("")
    for key, caption in [("evaluation", "Evaluation"), ("distributions", "Reward distributions")]:
        if figures.get(key):
            lines += [f"![{caption}]({figures[key].name})", ""]
    return "\n".join(lines).rstrip()


def _pool(run: Run, figures: dict) -> str:
    distribution = run.pool_distribution
    if distribution.empty:
        return ""
    last_step = int(distribution["step"].max())
    last = distribution[distribution["step"] == last_step]
    templates = run.pool_templates.set_index("template")
    steps = run.pool_steps
    row = steps[steps["step"] == last_step].iloc[0]
    lines = [
        "## Pool prompter",
        "",
        f"At step {last_step}: total variation between the trained distribution and rho* "
        f"{md.number(row.total_variation, 4)}; KL(trained || reference) "
        f"{md.number(row.kl_trained_reference, 4)} nats, KL(rho* || reference) "
        f"{md.number(row.kl_rho_star_reference, 4)} nats.",
        "",
    ]
    rows = []
    for r in last.sort_values("template").itertuples():
        text = templates["text"].get(r.template, "")
        reference = templates["reference"].get(r.template, float("nan"))
        rows.append(
            [
                r.template,
                md.text(text, 80),
                md.number(reference),
                md.number(r.trained),
                md.number(r.rho_star),
            ]
        )
    lines.append(md.table(["template", "text", "reference", "trained", "rho*"], rows, "rlrrr"))
    if figures.get("pool"):
        lines += ["", f"![Pool prompter]({figures['pool'].name})"]
    return "\n".join(lines)


def _training_examples(run: Run, count: int) -> list[str]:
    samples = run.samples
    if samples.empty:
        return []
    step = int(samples["step"].max())
    rows = samples[samples["step"] == step].sort_values("reward", ascending=False, kind="stable")
    count = min(count, (len(rows) + 1) // 2)
    lines = [f"### Training, step {step} ({len(rows)} responses)", ""]
    for title, part in [("Best", rows.head(count)), ("Worst", rows.tail(count).iloc[::-1])]:
        lines += [f"**{title}**", ""]
        for i, r in enumerate(part.itertuples(), 1):
            lines += [
                f"{i}. reward **{md.number(r.reward)}**, advantage {md.number(r.advantage)} "
                f"(prompt {r.prompt_index}, candidate {r.candidate}, response {r.sample}, "
                f"rank {r.rank})",
                f"   - prompt: {md.text(r.prompt)}",
                f"   - rewrite: {md.text(r.rewrite)}",
                f"   - response: {md.text(r.response)}",
            ]
        lines.append("")
    return lines


def _evaluation_examples(run: Run, count: int) -> list[str]:
    samples = run.eval_samples
    if samples.empty:
        return []
    latest = samples[samples["eval_index"] == samples["eval_index"].max()]
    keys = ["prompt_index", "decoding"]
    pro = latest[latest["condition"] == "align-pro"]
    none = latest[latest["condition"] == "none"]
    if pro.empty or none.empty:
        return []
    pairs = pro.merge(none[keys + ["response", "reward"]], on=keys, suffixes=("", "_none"))
    pairs = pairs.assign(gain=pairs["reward"] - pairs["reward_none"])
    pairs = pairs.sort_values(["gain", "reward"], ascending=False, kind="stable")
    count = min(count, (len(pairs) + 1) // 2)
    lines = [
        f"### Evaluation after step {int(latest['step'].iloc[0])}: "
        "Align-Pro against no optimisation",
        "",
    ]
    for title, part in [
        ("Largest gains", pairs.head(count)),
        ("Smallest gains (largest losses)", pairs.tail(count).iloc[::-1]),
    ]:
        lines += [f"**{title}**", ""]
        for i, r in enumerate(part.itertuples(), 1):
            lines += [
                f"{i}. gain **{md.number(r.gain)}**: Align-Pro {md.number(r.reward)}, "
                f"no optimisation {md.number(r.reward_none)} (held-out prompt {r.prompt_index}, "
                f"{md.text(r.decoding)} decoding)",
                f"   - prompt: {md.text(r.prompt)}",
                f"   - rewrite: {md.text(r.rewrite)}",
                f"   - Align-Pro response: {md.text(r.response)}",
                f"   - response without optimisation: {md.text(r.response_none)}",
            ]
        lines.append("")
    return lines


def _examples(run: Run, count: int) -> str:
    lines = ["## Example rewrites", ""]
    body = _training_examples(run, count) + _evaluation_examples(run, count)
    if not body:
        body = ["No samples are recorded yet."]
    return "\n".join(lines + body).rstrip()


def make_figures(run: Run, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "training": plots.training_curves(run, out / "training.png"),
        "evaluation": plots.evaluation_bars(run, out / "evaluation.png"),
        "distributions": plots.reward_distributions(run, out / "reward_distributions.png"),
        "timings": plots.phase_times(run, out / "timings.png"),
        "pool": plots.pool_distributions(run, out / "pool.png"),
    }
    return {key: path for key, path in figures.items() if path is not None}


def report(run: Run, out: Path, examples: int = 3) -> tuple[Path, dict]:
    """Writes the figures and report.md into out; returns the report's path and the figures."""
    out = Path(out)
    figures = make_figures(run, out)
    parts = [
        _header(run),
        _settings(run),
        _training(run, figures),
        _evaluation(run, figures),
        _pool(run, figures),
        _examples(run, examples),
    ]
    path = out / "report.md"
    path.write_text("\n\n".join(p for p in parts if p) + "\n", encoding="utf-8")
    return path, figures


def default_output(run_path: str) -> Path:
    path = Path(run_path)
    return path.with_name(path.stem + "-report")
