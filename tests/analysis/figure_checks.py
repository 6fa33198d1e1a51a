"""What every figure must pass: labelled axes with units, a legend, and no two texts drawn over
each other."""

from __future__ import annotations

import itertools


def _tick_labels(axis):
    """The tick labels matplotlib draws: those of ticks inside the view."""
    low, high = sorted(axis.get_view_interval())
    margin = 1e-9 * (high - low)
    labels = []
    for ticks, locations in [
        (axis.get_major_ticks(), axis.get_majorticklocs()),
        (axis.get_minor_ticks(), axis.get_minorticklocs()),
    ]:
        for tick, location in zip(ticks, locations):
            if low - margin <= location <= high + margin:
                labels += [tick.label1, tick.label2]
    return labels


def _texts(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = []
    if fig._suptitle is not None:
        texts.append(fig._suptitle)
    for legend in fig.legends:
        texts += legend.get_texts() + [legend.get_title()]
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        texts += _tick_labels(ax.xaxis) + _tick_labels(ax.yaxis)
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
    texts = [t for t in texts if t.get_visible() and t.get_text().strip()]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts]


def check_figure(fig):
    for ax in fig.axes:
        assert ax.get_xlabel(), f"an axis without an x label in {fig._suptitle.get_text()}"
        label = ax.get_ylabel()
        assert label and "(" in label and label.endswith(")"), f"y label without a unit: {label!r}"
        has_legend = ax.get_legend() is not None or fig.legends
        assert has_legend, f"no legend on {ax.get_title()!r}"
    for (a, box_a), (b, box_b) in itertools.combinations(_texts(fig), 2):
        overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_w <= 1 or overlap_h <= 1, f"texts overlap: {a!r} and {b!r}"
