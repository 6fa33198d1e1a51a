"""The command line: python3 -m alignpro_analysis {report,compare,scaling} ..."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .results import ResultsFileError, load

EXIT_BAD_INPUT = 2


def _report(args) -> int:
    from .report import default_output, report

    run = load(args.run)
    out = Path(args.output) if args.output else default_output(args.run)
    path, figures = report(run, out, examples=args.examples)
    print(f"{args.run}: {run.status_line()}")
    print(f"wrote {path}")
    for figure in figures.values():
        print(f"wrote {figure}")
    return 0


def _compare(args) -> int:
    from .compare import compare

    runs = [load(path) for path in args.runs]
    print(compare(runs, Path(args.output) if args.output else None), end="")
    if args.output:
        print(f"\nwrote {Path(args.output) / 'compare.md'}")
    return 0


def _scaling(args) -> int:
    from .scaling import ScalingError, scaling

    runs = [load(path) for path in args.runs]
    try:
        text, *_ = scaling(
            runs,
            Path(args.output) if args.output else None,
            mode=args.mode,
            warmup=args.warmup,
            gradient_bytes=args.bytes,
            up_to=args.project_to,
        )
    except ScalingError as error:
        raise ResultsFileError(str(error)) from None
    print(text, end="")
    if args.output:
        print(f"\nwrote {Path(args.output) / 'scaling.md'}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alignpro-analysis",
        description="Figures, reports, comparisons and scaling studies of alignpro results files.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("report", help="figures (PNG) and a Markdown report of one run")
    r.add_argument("run", metavar="RUN.h5")
    r.add_argument("-o", "--output", metavar="DIR", help="folder to write (default: RUN-report)")
    r.add_argument("--examples", type=int, default=3, help="best and worst examples to show")
    r.set_defaults(handler=_report)

    c = sub.add_parser("compare", help="runs side by side, with paired win rates")
    c.add_argument("runs", metavar="RUN.h5", nargs="+")
    c.add_argument("-o", "--output", metavar="DIR", help="also write compare.md and a figure")
    c.set_defaults(handler=_compare)

    s = sub.add_parser("scaling", help="speedup, efficiency and a communication model")
    s.add_argument("runs", metavar="RUN.h5", nargs="+", help="one run per world size")
    s.add_argument("-o", "--output", metavar="DIR", help="also write scaling.md and figures")
    s.add_argument("--mode", choices=["strong", "weak"], help="default: from the units per step")
    s.add_argument("--warmup", type=int, default=1, help="first steps of each run left out")
    s.add_argument("--bytes", type=float, help="gradient bytes per all-reduce, to report beta")
    s.add_argument("--project-to", type=int, help="largest world size to project to")
    s.set_defaults(handler=_scaling)
    return p


def main(argv=None) -> int:
    # Piped into head or less: stop quietly when the reader goes away.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except ResultsFileError as error:
        print(f"alignpro-analysis: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
