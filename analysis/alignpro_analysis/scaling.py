"""`scaling RUN_*.h5`: throughput, speedup and efficiency against the world size, the time of
each phase per world size, and a latency-bandwidth model of the communication phase that
projects the efficiency to more ranks.

Strong scaling keeps the step's work (prompts x candidates, the `units` of /metrics) fixed as
ranks are added; weak scaling grows it with the ranks. Which one a set of runs is comes from
the units per step of each file. Throughput is work units per second of step wall time;
speedup is the throughput against the smallest world size's, and efficiency is the speedup
divided by the ratio of world sizes (for weak scaling this is the baseline's step time over
this one's).

The communication model is t_comm(p) = alpha * log2(p) + b * (p - 1) / p: a latency term per
round of a tree or recursive-doubling collective, and a bandwidth term of a ring all-reduce of
a fixed gradient (b = bytes / bandwidth; with --bytes, beta = b / bytes is reported). It is
fitted by non-negative least squares to the measured mean communication time per step. The
rest of the step is modelled as c0 + c1 / p for strong scaling (a serial part and a part that
divides over the ranks) and as a constant for weak scaling. Both models are fitted to the runs
given and extrapolated; the projection is a model, not a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matplotlib.ticker import FuncFormatter, NullFormatter

from . import markdown as md
from . import plots
from .results import PHASES, Run


class ScalingError(Exception):
    """A set of runs that does not make one scaling study."""


@dataclass
class CommModel:
    alpha: float  # seconds per log2(p)
    b: float  # seconds, the bandwidth term's size: bytes / bandwidth
    terms: str  # which terms were fitted
    residual: float  # root mean square residual, seconds
    points: int

    def __call__(self, p):
        p = np.asarray(p, float)
        return self.alpha * np.log2(p) + self.b * (p - 1) / p


@dataclass
class OtherModel:
    """The step time outside communication: c0 + c1 / p (strong) or c0 (weak)."""

    c0: float
    c1: float

    def __call__(self, p):
        return self.c0 + self.c1 / np.asarray(p, float)


def _steps_of(run: Run, warmup: int) -> pd.DataFrame:
    """The run's steps that ran at its world size, without the first `warmup` ones."""
    m = run.metrics
    if m.empty:
        raise ScalingError(f"{run.path}: no training step recorded; nothing to measure")
    timings = run.timings
    if not timings.empty:
        ranks = timings.groupby("step")["rank"].nunique()
        same = ranks[ranks == run.world_size].index
        m = m[m["step"].isin(same)]
    if len(m) > warmup:
        m = m.iloc[warmup:]
    if m.empty:
        raise ScalingError(f"{run.path}: no step ran at world size {run.world_size}")
    return m


def measure(runs: list[Run], warmup: int = 1) -> pd.DataFrame:
    """One row per world size: work, time, throughput and the mean seconds of each phase."""
    rows = []
    for run in runs:
        m = _steps_of(run, warmup)
        phases = run.phase_seconds()
        phases = phases[phases["step"].isin(m["step"])]
        row = {
            "file": run.path,
            "world_size": run.world_size,
            "steps": len(m),
            "units": float(m["units"].sum()),
            "tokens": float(m["tokens"].sum()),
            "seconds": float(m["step_s"].sum()),
            "units_per_step": float(m["units"].mean()),
        }
        for phase in PHASES:
            column = f"{phase}_s"
            row[column] = float(phases[column].sum()) if column in phases else 0.0
        rows.append(row)
    frame = pd.DataFrame(rows)
    sums = ["steps", "units", "tokens", "seconds"] + [f"{p}_s" for p in PHASES]
    grouped = frame.groupby("world_size")
    out = grouped[sums].sum()
    out["files"] = grouped["file"].apply(lambda files: ", ".join(Path(f).name for f in files))
    out["units_per_step"] = out["units"] / out["steps"]
    out["step_s"] = out["seconds"] / out["steps"]
    out["units_per_s"] = out["units"] / out["seconds"]
    out["tokens_per_s"] = out["tokens"] / out["seconds"]
    for phase in PHASES:
        out[f"{phase}_s"] = out[f"{phase}_s"] / out["steps"]
    return out.reset_index().sort_values("world_size").reset_index(drop=True)


def detect_mode(table: pd.DataFrame) -> str:
    """strong when every world size did the same work per step, weak when the work per rank
    stayed the same; a ScalingError otherwise."""
    units = table["units_per_step"].to_numpy()
    per_rank = units / table["world_size"].to_numpy()
    if np.allclose(units, units[0], rtol=1e-6):
        return "strong"
    if np.allclose(per_rank, per_rank[0], rtol=1e-6):
        return "weak"
    detail = ", ".join(f"{int(p)} ranks: {u:g}" for p, u in zip(table["world_size"], units))
    raise ScalingError(
        "the runs are neither strong scaling (the same work units per step) nor weak scaling "
        f"(the same units per rank): units per step {detail}; give one study at a time, or "
        "--mode strong|weak"
    )


def add_speedup(table: pd.DataFrame) -> pd.DataFrame:
    base = table.iloc[0]
    table = table.copy()
    table["speedup"] = table["units_per_s"] / base["units_per_s"]
    table["ideal_speedup"] = table["world_size"] / base["world_size"]
    table["efficiency"] = table["speedup"] / table["ideal_speedup"]
    return table


def _nnls(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients, by trying every subset of columns (the
    models here have two)."""
    best, best_error = np.zeros(features.shape[1]), np.sum(target**2)
    columns = range(features.shape[1])
    subsets = [[c] for c in columns] + [list(columns)]
    for subset in subsets:
        coef, *_ = np.linalg.lstsq(features[:, subset], target, rcond=None)
        if np.any(coef < 0):
            continue
        full = np.zeros(features.shape[1])
        full[subset] = coef
        error = np.sum((features @ full - target) ** 2)
        if error < best_error - 1e-18:
            best, best_error = full, error
    return best


def fit_communication(table: pd.DataFrame) -> CommModel:
    p = table["world_size"].to_numpy(float)
    t = table["communication_s"].to_numpy(float)
    above_one = np.unique(p[p > 1])
    if len(above_one) >= 2:
        features = np.column_stack([np.log2(p), (p - 1) / p])
        alpha, b = _nnls(features, t)
        terms = "alpha*log2(p) + b*(p-1)/p"
    elif len(above_one) == 1:
        # One world size above 1 cannot tell latency from bandwidth: the latency term alone.
        (alpha,) = _nnls(np.log2(p)[:, None], t)
        b = 0.0
        terms = "alpha*log2(p) only (one world size above 1 cannot separate the two terms)"
    else:
        alpha, b, terms = 0.0, 0.0, "none (no run with more than one rank)"
    model = CommModel(float(alpha), float(b), terms, 0.0, len(p))
    model.residual = float(np.sqrt(np.mean((model(p) - t) ** 2))) if len(p) else 0.0
    return model


def fit_other(table: pd.DataFrame, mode: str) -> OtherModel:
    p = table["world_size"].to_numpy(float)
    other = table["step_s"].to_numpy(float) - table["communication_s"].to_numpy(float)
    if mode == "weak" or len(np.unique(p)) < 2:
        if mode == "strong":
            # One world size: assume the work divides perfectly over the ranks.
            return OtherModel(0.0, float(np.mean(other * p)))
        return OtherModel(float(np.mean(other)), 0.0)
    c0, c1 = _nnls(np.column_stack([np.ones_like(p), 1 / p]), other)
    return OtherModel(float(c0), float(c1))


def project(table: pd.DataFrame, mode: str, comm: CommModel, other: OtherModel, up_to=None):
    """Projected step time, throughput and efficiency at powers of two beyond the runs."""
    base = table.iloc[0]
    p0, largest = float(base["world_size"]), int(table["world_size"].max())
    limit = up_to or max(64, 16 * largest)
    if mode == "strong":
        # A rank needs at least one work unit of the step.
        limit = min(limit, int(base["units_per_step"]))
    sizes = [int(2**k) for k in range(0, 21) if largest < 2**k <= limit]
    rows = []
    for p in sizes:
        step = float(other(p) + comm(p))
        units = base["units_per_step"] * (p / p0 if mode == "weak" else 1.0)
        throughput = units / step
        speedup = throughput / base["units_per_s"]
        rows.append(
            {
                "world_size": p,
                "step_s": step,
                "communication_s": float(comm(p)),
                "units_per_s": throughput,
                "speedup": speedup,
                "efficiency": speedup / (p / p0),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["world_size", "step_s", "communication_s", "units_per_s", "speedup", "efficiency"],
    )


def _log2_axis(ax):
    """World sizes on a log2 axis, labelled as plain numbers of ranks."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _mark_projection(ax, start, end):
    """Shades the projected range and says so in the plot."""
    ax.axvspan(start, end, color="C1", alpha=0.07)
    low, high = ax.get_ylim()
    ax.text(
        np.sqrt(start * end),
        high - 0.03 * (high - low),
        "projection",
        ha="center",
        va="top",
        color="C1",
    )


def _curve_sizes(table, projection):
    largest = projection["world_size"].max() if not projection.empty else table["world_size"].max()
    return np.geomspace(table["world_size"].min(), largest, 200)


def scaling_figure(table, projection, mode, comm, other, path: Path) -> Path:
    fig, axes = plots._figure(
        1, 3, 15, 4.6, f"{mode.capitalize()} scaling over {len(table)} world sizes"
    )
    p = table["world_size"].to_numpy(float)
    p0 = p[0]
    sizes = _curve_sizes(table, projection)
    base = table.iloc[0]
    units = base["units_per_step"] * (sizes / p0 if mode == "weak" else 1.0)
    model_throughput = units / (other(sizes) + comm(sizes))
    ax = axes[0, 0]
    ax.plot(p, table["units_per_s"], "o-", color="C0", label="measured")
    ax.plot(p, base["units_per_s"] * p / p0, ":", color="black", label="ideal (linear)")
    ax.set_ylabel("throughput (work units per second)")
    ax.set_title("Throughput")
    ax = axes[0, 1]
    ax.plot(p, table["speedup"], "o-", color="C0", label="measured")
    ax.plot(p, p / p0, ":", color="black", label="ideal")
    ax.set_ylabel(f"speedup over {int(p0)} rank{'s' if p0 > 1 else ''} (ratio)")
    ax.set_title("Speedup" if mode == "strong" else "Scaled speedup")
    ax = axes[0, 2]
    ax.plot(p, table["efficiency"], "o-", color="C0", label="measured")
    efficiency = (model_throughput / base["units_per_s"]) / (sizes / p0)
    beyond = sizes >= p.max()
    ax.plot(sizes[~beyond], efficiency[~beyond], "-", color="C1", alpha=0.6, label="model fit")
    if not projection.empty:
        ax.plot(
            sizes[beyond],
            efficiency[beyond],
            "--",
            color="C1",
            label="projection (model, not measured)",
        )
    ax.axhline(1.0, ls=":", color="black", lw=1, label="ideal")
    ax.set_ylim(0, 1.15)
    if not projection.empty:
        _mark_projection(ax, p.max(), sizes.max())
    ax.set_ylabel("parallel efficiency (fraction)")
    ax.set_title("Efficiency")
    for ax in axes.flat:
        _log2_axis(ax)
        ax.set_xlabel("world size (MPI ranks)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best", fontsize="small")
    return plots._save(fig, path)


def phases_figure(table, mode, path: Path) -> Path:
    fig, axes = plots._figure(1, 2, 12, 4.6, f"Time per phase and world size ({mode} scaling)")
    x = np.arange(len(table))
    labels = [str(int(p)) for p in table["world_size"]]
    shares = table.copy()
    total = sum(table[f"{phase}_s"] for phase in PHASES)
    for phase in PHASES:
        shares[f"{phase}_s"] = table[f"{phase}_s"] / total
    for ax, frame, ylabel, title in [
        (axes[0, 0], table, "time per step, mean over ranks (seconds)", "Seconds per phase"),
        (axes[0, 1], shares, "share of the step (fraction)", "Share of each phase"),
    ]:
        plots._stacked(ax, x, frame, 0.6)
        ax.set_xticks(x, labels)
        ax.set_xlabel("world size (MPI ranks)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles[::-1], names[::-1], loc="outside right upper", title="phase")
    return plots._save(fig, path)


def comm_figure(table, projection, comm: CommModel, path: Path) -> Path:
    fig, axes = plots._figure(1, 1, 7.5, 4.6, "Communication time per step: measurements and model")
    ax = axes[0, 0]
    p = table["world_size"].to_numpy(float)
    sizes = _curve_sizes(table, projection)
    beyond = sizes >= p.max()
    label = f"fit: {comm.alpha * 1e3:.3g} ms x log2(p) + {comm.b * 1e3:.3g} ms x (p-1)/p"
    ax.plot(sizes[~beyond], comm(sizes[~beyond]) * 1e3, "-", color="C1", label=label)
    if not projection.empty:
        ax.plot(
            sizes[beyond],
            comm(sizes[beyond]) * 1e3,
            "--",
            color="C1",
            label="projection (model, not measured)",
        )
    ax.plot(
        p,
        table["communication_s"] * 1e3,
        "o",
        color="C0",
        label="measured (mean over ranks and steps)",
    )
    _log2_axis(ax)
    low, high = ax.get_ylim()
    ax.set_ylim(min(0, low), high + 0.1 * (high - low))
    if not projection.empty:
        _mark_projection(ax, p.max(), sizes.max())
    ax.set_xlabel("world size (MPI ranks)")
    ax.set_ylabel("communication time per step (milliseconds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize="small")
    return plots._save(fig, path)


def _markdown(table, projection, mode, comm, other, figures, gradient_bytes) -> str:
    lines = [f"# Scaling study: {mode} scaling", ""]
    how = (
        "the same work units per step at every world size"
        if mode == "strong"
        else "work units per step growing with the ranks"
    )
    lines += [
        f"{len(table)} world sizes, {how}. Throughput is work units (prompts x candidates) per "
        "second of step wall time, over every step but the first of each run; speedup and "
        f"efficiency are against {int(table['world_size'].iloc[0])} rank(s).",
        "",
    ]
    rows = [
        [
            int(r.world_size),
            md.text(r.files),
            int(r.steps),
            md.number(r.units_per_step, 1),
            md.number(r.step_s, 4),
            md.number(r.units_per_s, 2),
            md.number(r.tokens_per_s, 1),
            md.number(r.speedup, 3),
            md.number(r.efficiency, 3),
            md.number(r.communication_s, 4),
            md.number(r.waiting_s, 4),
        ]
        for r in table.itertuples()
    ]
    header = [
        "ranks",
        "files",
        "steps",
        "units/step",
        "step time (s)",
        "units/s",
        "tokens/s",
        "speedup",
        "efficiency",
        "communication (s)",
        "waiting (s)",
    ]
    lines += [md.table(header, rows, "rlrrrrrrrrr"), ""]
    phase_rows = [
        [int(r["world_size"])] + [md.number(r[f"{phase}_s"], 4) for phase in PHASES]
        for _, r in table.iterrows()
    ]
    lines += [
        "Seconds per step in each phase (mean over ranks):",
        "",
        md.table(
            ["ranks"] + [plots.phase_label(p) for p in PHASES], phase_rows, "r" * (1 + len(PHASES))
        ),
        "",
        "## Communication model",
        "",
        f"Fitted: t_comm(p) = {comm.terms}, alpha = {md.number(comm.alpha, 4)} s, "
        f"b = {md.number(comm.b, 4)} s, root mean square residual {md.number(comm.residual, 4)} s "
        f"over {comm.points} world sizes.",
    ]
    if gradient_bytes:
        beta = comm.b / gradient_bytes
        bandwidth = "–" if beta <= 0 else md.number(1 / beta / 1e9, 3)
        lines.append(
            f"With {gradient_bytes:g} bytes of gradient per all-reduce: "
            f"beta = {md.number(beta, 4)} s/byte "
            f"(about {bandwidth} GB/s)."
        )
    rest = (
        f"{md.number(other.c0, 4)} s + {md.number(other.c1, 4)} s / p"
        if mode == "strong"
        else f"{md.number(other.c0, 4)} s (constant)"
    )
    lines += ["", f"The step outside communication is modelled as {rest}.", ""]
    if projection.empty:
        lines.append("No projection: the runs already reach the largest world size projected.")
    else:
        lines += [
            "**Projection (a model fitted to the runs above, not a measurement):**",
            "",
            md.table(
                [
                    "ranks",
                    "projected step time (s)",
                    "of it communication (s)",
                    "projected units/s",
                    "projected efficiency",
                ],
                [
                    [
                        int(r.world_size),
                        md.number(r.step_s, 4),
                        md.number(r.communication_s, 4),
                        md.number(r.units_per_s, 2),
                        md.number(r.efficiency, 3),
                    ]
                    for r in projection.itertuples()
                ],
                "rrrrr",
            ),
        ]
        if mode == "strong":
            lines += [
                "",
                "Strong scaling stops at the step's work units: a rank needs one unit at least.",
            ]
    lines.append("")
    for name in figures:
        lines += [f"![{name.stem}]({name.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def scaling(
    runs: list[Run],
    out: Path | None = None,
    mode: str | None = None,
    warmup: int = 1,
    gradient_bytes: float | None = None,
    up_to: int | None = None,
) -> tuple[str, pd.DataFrame, pd.DataFrame, CommModel]:
    """The scaling study of the runs: Markdown, the measured table, the projection and the
    communication model; with out, the figures and scaling.md are written there."""
    not_complete = [r.path for r in runs if not r.is_complete]
    table = measure(runs, warmup)
    mode = mode or detect_mode(table)
    table = add_speedup(table)
    comm = fit_communication(table)
    other = fit_other(table, mode)
    projection = project(table, mode, comm, other, up_to)
    figures = []
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figures = [
            scaling_figure(table, projection, mode, comm, other, out / "scaling.png"),
            phases_figure(table, mode, out / "scaling_phases.png"),
            comm_figure(table, projection, comm, out / "scaling_comm.png"),
        ]
    text = _markdown(table, projection, mode, comm, other, figures, gradient_bytes)
    if not_complete:
        text = (
            "> **Not every run is complete** (measured over the steps they recorded): "
            + ", ".join(md.text(p) for p in not_complete)
            + "\n\n"
            + text
        )
    if out is not None:
        (out / "scaling.md").write_text(text, encoding="utf-8")
    return text, table, projection, comm
