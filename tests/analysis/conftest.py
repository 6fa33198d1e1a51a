"""Fixtures of the analysis tests: results files made in the test run by alignpro itself.

The files come from `alignpro train` (the binary named by ALIGNPRO_BINARY) on tiny jobs. While
that binary has no `train` command, they come from alignpro_results_example (named by
ALIGNPRO_RESULTS_EXAMPLE), which runs a small pool-prompter experiment through the same
ResultsWriter; once `alignpro train` exists it is used and the stand-in is not. Two cases are
always made by the stand-in, since only the writer's own crash hook can make them on purpose:
a writer killed between committing a step's rows and its steps_done, and a failed run.

Nothing is skipped: when no results file can be made, the tests fail and say why.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("ALIGNPRO_SOURCE_DIR", HERE.parent.parent))
ANALYSIS_DIR = SOURCE_DIR / "analysis"
if str(ANALYSIS_DIR) not in sys.path:
    sys.path.insert(0, str(ANALYSIS_DIR))

RUN_TIMEOUT_S = 300

TRAIN_PROMPTS = [
    "How do I boil an egg?",
    "What is the best way to learn to swim?",
    "How can I fix a flat bicycle tyre?",
    "How should I store fresh herbs?",
    "What do I need to plant tomatoes?",
    "How do I clean a cast iron pan?",
    "How can I fall asleep faster?",
    "How do I change a light bulb?",
]
EVAL_PROMPTS = [
    "How do I cook rice on a stove?",
    "How can I remove a coffee stain?",
    "How do I hang a picture on a wall?",
    "What is the safest way to defrost meat?",
    "How do I tie a tie?",
    "How can I learn a new language?",
]


def _environment_file(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: the analysis tests need it to make results files "
            "(ctest sets it; by hand: export it to the path of the built executable)"
        )
    path = Path(value)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"{name}={value}: no executable there; build it first")
    return path


def has_train_command(binary: Path) -> bool:
    """Whether `alignpro --help` lists a train command (CLI11 prints the main help, exit code 0,
    for `alignpro train --help` when there is no such command, so that cannot tell)."""
    result = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    listed = result.stdout.split("Subcommands:", 1)[-1].splitlines()
    return any(line.split()[:1] == ["train"] for line in listed)


def mpiexec_prefix() -> list[str]:
    """mpiexec and its flags up to the rank count (ctest passes the build's in ALIGNPRO_MPIEXEC)."""
    if os.environ.get("ALIGNPRO_MPIEXEC"):
        return shlex.split(os.environ["ALIGNPRO_MPIEXEC"])
    flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return ["mpiexec", *flags, "-n"]


def _steps_done(path: Path) -> int:
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return int(f.attrs["steps_done"])
    except (OSError, KeyError):
        return -1


class Producer:
    """Makes results files; `kind` says with what ("train" or "example")."""

    def __init__(self, binary: Path, example: Path | None, root: Path):
        self.binary = binary
        self.example = example
        self.root = root
        self.kind = "train" if has_train_command(binary) else "example"
        if self.kind == "example" and example is None:
            pytest.fail(
                f"{binary} has no `train` command and ALIGNPRO_RESULTS_EXAMPLE is not set: "
                "no results file can be made"
            )

    # The stand-in writer.
    def _example(
        self, out: Path, ranks, steps, batch_prompts, seed, kl_coef, rlhf, stop, after, resume
    ):
        command = [str(self.example), "--out", str(out), "--name", out.stem]
        command += ["--ranks", str(ranks), "--steps", str(steps)]
        command += ["--batch-prompts", str(batch_prompts), "--seed", str(seed)]
        command += ["--kl-coef", str(kl_coef), "--eval-every", str(max(1, steps // 2))]
        if rlhf:
            command.append("--rlhf")
        if stop:
            command += ["--stop-after", str(after), "--stop", stop]
        if resume:
            command.append("--resume")
        result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        # _Exit(9) for the killed cases, the exit codes of alignpro for the others.
        expected = {None: 0, "preempted": 3, "failed": 1, "killed": 9, "killed-uncommitted": 9}
        if result.returncode != expected[stop] or not out.is_file():
            pytest.fail(
                f"{shlex.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return out

    # The real thing.
    def _job(self, out: Path, steps, batch_prompts, seed, kl_coef, rlhf) -> Path:
        folder = out.parent / (out.stem + "-job")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prompts.txt").write_text("\n".join(TRAIN_PROMPTS) + "\n")
        (folder / "prompts-heldout.txt").write_text("\n".join(EVAL_PROMPTS) + "\n")
        model = SOURCE_DIR / "tests" / "fixtures" / "models" / "gpt2"
        job = folder / "job.toml"
        job.write_text(f"""[run]
name = "{out.stem}"
seed = {seed}
steps = {steps}
output = "{out}"
checkpoint_every = 1

[data]
train = "prompts.txt"
eval = "prompts-heldout.txt"

[prompter]
kind = "pool"
candidates = 4
pool = ["{{prompt}}", "Answer carefully: {{prompt}}", "Think step by step. {{prompt}}"]

[target]
model = "{model}"
samples = 2
max_new_tokens = 8

[reward]
kind = "keywords"
keywords = ["first", "then", "because"]

[optim]
lr = 0.5
kl_coef = {kl_coef}
batch_prompts = {batch_prompts}

[eval]
every = {max(1, steps // 2)}
prompts = {len(EVAL_PROMPTS)}
bootstrap = 200
{f'rlhf_target = "{model}"' if rlhf else ""}

[runtime]
device = "cpu"
threads = 1
""")
        check = subprocess.run(
            [str(self.binary), "check", str(job)], capture_output=True, text=True, timeout=120
        )
        if check.returncode != 0:
            pytest.fail(f"alignpro check {job} failed:\n{check.stdout}\n{check.stderr}")
        return job

    def _train(
        self, out: Path, ranks, steps, batch_prompts, seed, kl_coef, rlhf, stop, after, resume
    ):
        job = out.parent / (out.stem + "-job") / "job.toml"
        if not resume:
            job = self._job(out, steps, batch_prompts, seed, kl_coef, rlhf)
        command = [str(self.binary), "train", str(job)]
        if ranks > 1:
            command = mpiexec_prefix() + [str(ranks)] + command
        if stop not in ("preempted", "killed"):
            if stop is not None:
                pytest.fail(f"stop mode {stop!r} needs the stand-in writer")
            result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            if result.returncode != 0 or not out.is_file():
                pytest.fail(
                    f"{shlex.join(command)} exited with {result.returncode}:\n{result.stderr}"
                )
            return out
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while _steps_done(out) < after and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM if stop == "preempted" else signal.SIGKILL)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        if stop == "preempted" and process.returncode != 3:
            pytest.fail(
                f"{shlex.join(command)}: SIGTERM gave exit code {process.returncode}, "
                f"not 3:\n{stderr}"
            )
        if _steps_done(out) < 1:
            pytest.fail(f"{shlex.join(command)} was stopped before it committed a step:\n{stderr}")
        return out

    def make(
        self,
        name,
        ranks=1,
        steps=6,
        batch_prompts=4,
        seed=7,
        kl_coef=0.1,
        rlhf=False,
        stop=None,
        after=None,
        resume=False,
        stand_in=False,
    ):
        """Makes (or, with resume, continues) the results file `name`.h5 and returns its path."""
        out = self.root / f"{name}.h5"
        if stand_in or self.kind == "example":
            if self.example is None:
                pytest.fail(
                    "ALIGNPRO_RESULTS_EXAMPLE is not set: this case needs the stand-in writer"
                )
            return self._example(
                out, ranks, steps, batch_prompts, seed, kl_coef, rlhf, stop, after, resume
            )
        return self._train(
            out, ranks, steps, batch_prompts, seed, kl_coef, rlhf, stop, after, resume
        )


@pytest.fixture
def checked_figures(monkeypatch):
    """Runs figure_checks.check_figure on every figure the analysis saves; yields the names of
    the files checked."""
    from alignpro_analysis import plots
    from figure_checks import check_figure

    checked = []
    save = plots._save

    def check_then_save(fig, path):
        check_figure(fig)
        checked.append(path.name)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", check_then_save)
    return checked


@pytest.fixture(scope="session")
def producer(tmp_path_factory) -> Producer:
    binary = _environment_file("ALIGNPRO_BINARY")
    example = os.environ.get("ALIGNPRO_RESULTS_EXAMPLE")
    example = _environment_file("ALIGNPRO_RESULTS_EXAMPLE") if example else None
    return Producer(binary, example, tmp_path_factory.mktemp("runs"))


def pytest_report_header(config):
    binary = os.environ.get("ALIGNPRO_BINARY")
    if binary and Path(binary).is_file():
        kind = "alignpro train" if has_train_command(Path(binary)) else "alignpro_results_example"
        return f"results files made by: {kind}"
    return "results files made by: nothing (ALIGNPRO_BINARY is not set)"


@pytest.fixture(scope="session")
def main_run(producer) -> Path:
    return producer.make("main", ranks=2, steps=8, rlhf=True)


@pytest.fixture(scope="session")
def second_run(producer) -> Path:
    return producer.make("second", ranks=1, steps=8, seed=11, kl_coef=0.3, rlhf=True)


@pytest.fixture(scope="session")
def strong_runs(producer) -> list[Path]:
    return [producer.make(f"strong-ws{p}", ranks=p, steps=5, batch_prompts=4) for p in (1, 2, 4)]


@pytest.fixture(scope="session")
def weak_runs(producer) -> list[Path]:
    return [producer.make(f"weak-ws{p}", ranks=p, steps=5, batch_prompts=2 * p) for p in (1, 2, 4)]


# The runs that are stopped by a signal are long enough (30 steps of a tiny model) that the
# signal, sent once `after` steps are committed, arrives well before the last step.
@pytest.fixture(scope="session")
def preempted_run(producer) -> Path:
    return producer.make("preempted", steps=30, stop="preempted", after=3)


@pytest.fixture(scope="session")
def killed_run(producer) -> Path:
    return producer.make("killed", steps=30, stop="killed", after=3)


@pytest.fixture(scope="session")
def resumed_run(producer) -> Path:
    producer.make("resumed", steps=30, stop="preempted", after=5)
    return producer.make("resumed", steps=30, resume=True)


@pytest.fixture(scope="session")
def fresh_run(producer) -> Path:
    """A run killed before its first step: the evaluation before training, no step."""
    return producer.make("fresh", steps=8, stop="killed", after=0, stand_in=True)


@pytest.fixture(scope="session")
def uncommitted_run(producer) -> Path:
    return producer.make("uncommitted", steps=8, stop="killed-uncommitted", after=3, stand_in=True)


@pytest.fixture(scope="session")
def failed_run(producer) -> Path:
    return producer.make("failed", steps=8, stop="failed", after=2, stand_in=True)
