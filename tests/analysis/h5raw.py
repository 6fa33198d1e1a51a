"""Reading a results file with h5py alone, as the README's results file format tells a user to,
so that the tests check alignpro_analysis against the file and not against itself."""

from __future__ import annotations

import h5py
import numpy as np


def open_file(path):
    return h5py.File(path, "r", swmr=True, locking=False)


def root(path) -> dict:
    with open_file(path) as f:
        out = {}
        for name, value in f.attrs.items():
            if isinstance(value, bytes):
                value = value.rstrip(b"\0").decode()
            elif isinstance(value, np.ndarray) and value.dtype.kind == "O":
                value = [v.decode() if isinstance(v, bytes) else v for v in value]
            elif isinstance(value, np.generic):
                value = value.item()
            out[name] = value
        return out


def columns(path, table: str, committed_only: bool = True) -> dict[str, list]:
    """Every column of a table as a list: the committed rows of complete steps, or (with
    committed_only False) every row stored."""
    with open_file(path) as f:
        group = f[table]
        rows = int(group.attrs["rows"])
        steps_done = int(f.attrs["steps_done"])
        out = {}
        for name in group:
            data = group[name]
            text = h5py.check_string_dtype(data.dtype) is not None
            values = data.asstr()[()] if text else data[()]
            out[name] = list(values[:rows] if committed_only else values)
        if committed_only and "step" in out:
            keep = [i for i, s in enumerate(out["step"]) if s <= steps_done]
            out = {name: [values[i] for i in keep] for name, values in out.items()}
        return out


def table_paths(path) -> list[str]:
    found = []
    with open_file(path) as f:

        def visit(name, item):
            if isinstance(item, h5py.Group) and "rows" in item.attrs:
                found.append(name)

        f.visititems(visit)
    return sorted(found)


def latest_eval_samples(path) -> list[dict]:
    c = columns(path, "eval/samples")
    if not c["eval_index"]:
        return []
    latest = max(c["eval_index"])
    names = list(c)
    return [
        {name: c[name][i] for name in names}
        for i in range(len(c["eval_index"]))
        if c["eval_index"][i] == latest
    ]
