"""Fixtures of the analysis tests: results files that alignpro makes in the test run.

The files come from `alignpro train` (the binary named by ALIGNPRO_BINARY) on small jobs: a
`pool` prompter over three templates, a rule reward, and the tiny GPT-2 of tests/fixtures/models
as the target (and as the RLHF reference), at one and two ranks. A run is preempted with SIGTERM,
killed with SIGKILL, made to fail by a checkpoint folder it cannot create, and resumed by running
its job again, as a user's run would be.

Nothing is skipped: when no results file can be made, the tests fail and say why.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import pytest

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("ALIGNPRO_SOURCE_DIR", HERE.parent.parent))
ANALYSIS_DIR = SOURCE_DIR / "analysis"
if str(ANALYSIS_DIR) not in sys.path:
    sys.path.insert(0, str(ANALYSIS_DIR))

RUN_TIMEOUT_S = 300
TARGET_MODEL = SOURCE_DIR / "tests" / "fixtures" / "models" / "gpt2"

# Short prompts and templates: the fixture target has 64 positions, and these tokenise to about
# one token per character.
TRAIN_PROMPTS = [
    "boil an egg",
    "learn to swim",
    "fix a flat tyre",
    "store herbs",
    "plant tomatoes",
    "clean a pan",
    "fall asleep",
    "change a bulb",
]
EVAL_PROMPTS = [
    "cook rice",
    "remove a stain",
    "hang a picture",
    "defrost meat",
    "tie a tie",
    "learn a language",
]
POOL = ["{prompt}", "Say more: {prompt}", "{prompt} Be brief."]
# World sizes of the scaling studies.
SCALING_SIZES = (1, 2)


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
    """Whether the binary has `train`: `alignpro train --help` exits with 0 and shows that
    command's own help (a binary without it answers with its main help, whose usage line does
    not name `train`)."""
    result = subprocess.run(
        [str(binary), "train", "--help"], capture_output=True, text=True, timeout=60
    )
    usage = next((line for line in result.stdout.splitlines() if "Usage:" in line), "")
    return result.returncode == 0 and "train" in usage.split()


def mpiexec_prefix() -> list[str]:
    """mpiexec and its flags up to the rank count (ctest passes the build's in ALIGNPRO_MPIEXEC)."""
    if os.environ.get("ALIGNPRO_MPIEXEC"):
        return shlex.split(os.environ["ALIGNPRO_MPIEXEC"])
    flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return ["mpiexec", *flags, "-n"]


def steps_done(path: Path) -> int:
    """The file's committed steps; -1 while there is no file (or it cannot be read yet)."""
    try:
        # Without HDF5's file lock, which would stop the run from reopening its file to write.
        with h5py.File(path, "r", swmr=True, locking=False) as f:
            return int(f.attrs["steps_done"])
    except (OSError, KeyError):
        return -1


@dataclass
class Job:
    """What a test run does; the producer turns it into a job file."""

    name: str
    ranks: int = 1
    steps: int = 6
    batch_prompts: int = 4
    seed: int = 7
    kl_coef: float = 0.1
    samples: int = 2  # responses per rewrite
    eval_every: int = 3
    rlhf: bool = False
    checkpoint_every: int = 2
    # How the run ends: None (it completes), "preempted" (SIGTERM), "killed" (SIGKILL), both
    # once `after` steps are committed, or "failed" (an error after `after` steps).
    stop: str | None = None
    after: int = 0


@dataclass
class Live:
    """A run's file, and what the analysis read from it while the run was going: one tuple
    (status, steps_done, metrics rows, highest step in metrics, status line) per read."""

    path: Path
    reads: list = field(default_factory=list)


class Producer:
    """Makes results files in `root`: runs a job to its end, or stops it with a signal."""

    def __init__(self, program: Path, root: Path):
        self.program = program
        self.root = root

    def command(self, job: Job, out: Path, resume: bool) -> list[str]:
        raise NotImplementedError

    def make(self, job: Job, resume: bool = False, watch=None) -> Path:
        """The results file of `job` (with resume: the same job started again, which continues
        it); `watch(path)` is called while a run that is stopped by a signal goes on."""
        out = self.root / f"{job.name}.h5"
        command = self.command(job, out, resume)
        if resume or job.stop in (None, "failed"):
            result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            # A failed run exits with 1 (run time) or 2 (what it could not write is bad input).
            expected = (1, 2) if job.stop == "failed" and not resume else (0,)
            if result.returncode not in expected or not out.is_file():
                pytest.fail(
                    f"{shlex.join(command)} exited with {result.returncode}, not "
                    f"{' or '.join(map(str, expected))}:\n{result.stdout}\n{result.stderr}"
                )
            return out
        return self._stop(command, out, job, watch)

    def _stop(self, command, out: Path, job: Job, watch) -> Path:
        """Runs until `job.after` steps are committed (with after = 0: until the file is
        there), then sends SIGTERM (preempted) or SIGKILL (killed)."""
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            done = steps_done(out)
            if done >= job.after:
                break
            if watch is not None and done >= 0:
                watch(out)
            time.sleep(0.002 if job.after == 0 else 0.02)
        process.send_signal(signal.SIGTERM if job.stop == "preempted" else signal.SIGKILL)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        stderr = stderr.decode(errors="replace")
        expected = 3 if job.stop == "preempted" else -signal.SIGKILL
        if process.returncode != expected:
            pytest.fail(
                f"{shlex.join(command)}: {job.stop} after {job.after} steps gave exit code "
                f"{process.returncode}, not {expected}:\n{stderr}"
            )
        done = steps_done(out)
        # Steps go on while the signal is on its way (a loaded machine may not run this poll for
        # a while), so a run stopped after some steps may have any number more, short of its
        # last; a run stopped before its first step must have none.
        latest = job.steps - 1 if job.after > 0 else 0
        if not job.after <= done <= latest:
            pytest.fail(
                f"{shlex.join(command)}: stopped with {done} steps done, expected "
                f"{job.after} to {latest}: the run went faster than the test could signal it"
            )
        return out


class TrainProducer(Producer):
    """Results files from `alignpro train`."""

    def job_file(self, job: Job, out: Path) -> Path:
        folder = out.parent / (out.stem + "-job")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prompts.txt").write_text("\n".join(TRAIN_PROMPTS) + "\n")
        (folder / "prompts-heldout.txt").write_text("\n".join(EVAL_PROMPTS) + "\n")
        pool = ", ".join(f'"{t}"' for t in POOL)
        rlhf = f'rlhf_target = "{TARGET_MODEL}"\n' if job.rlhf else ""
        path = folder / "job.toml"
        path.write_text(
            f"""# An analysis test run: a pool prompter, a rule reward, the tiny GPT-2 fixture.
[run]
name = "{job.name}"
seed = {job.seed}
steps = {job.steps}
output = "{out}"
checkpoint_every = {job.checkpoint_every}

[data]
train = "prompts.txt"
eval = "prompts-heldout.txt"

[prompter]
kind = "pool"
candidates = 3
pool = [{pool}]

[target]
model = "{TARGET_MODEL}"
samples = {job.samples}
max_new_tokens = 8

[reward]
kind = "sum"
terms = ["length", "regex"]
weights = [0.5, 0.5]
length_min = 2
length_max = 4
regex = "[aeiou][a-z]"

[optim]
lr = 0.3
kl_coef = {job.kl_coef}
batch_prompts = {job.batch_prompts}

[eval]
every = {job.eval_every}
bootstrap = 200
{rlhf}
[runtime]
device = "cpu"
threads = 1
"""
        )
        check = subprocess.run(
            [str(self.program), "check", str(path)], capture_output=True, text=True, timeout=120
        )
        if check.returncode != 0:
            pytest.fail(f"alignpro check {path} failed:\n{check.stdout}\n{check.stderr}")
        return path

    def command(self, job: Job, out: Path, resume: bool) -> list[str]:
        path = out.parent / (out.stem + "-job") / "job.toml"
        if not resume:
            path = self.job_file(job, out)
            if job.stop == "failed":
                # A file where the checkpoint folder should go: the first checkpoint fails.
                Path(f"{out}.checkpoints").write_text("in the way of the checkpoint folder\n")
        command = [str(self.program), "train", str(path)]
        if job.ranks > 1:
            command = mpiexec_prefix() + [str(job.ranks)] + command
        return command


def make_producer(root: Path):
    binary = _environment_file("ALIGNPRO_BINARY")
    if not has_train_command(binary):
        pytest.fail(f"{binary} has no `train` command: no results file can be made")
    return TrainProducer(binary, root)


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
def producer(tmp_path_factory):
    return make_producer(tmp_path_factory.mktemp("runs"))


def pytest_report_header(config):
    binary = os.environ.get("ALIGNPRO_BINARY")
    if binary and Path(binary).is_file():
        if has_train_command(Path(binary)):
            return "results files made by: alignpro train"
        return "results files made by: alignpro_results_example (no train command)"
    return "results files made by: nothing (ALIGNPRO_BINARY is not set)"


@pytest.fixture(scope="session")
def main_run(producer) -> Path:
    return producer.make(Job("main", ranks=2, steps=6, rlhf=True))


@pytest.fixture(scope="session")
def second_run(producer) -> Path:
    return producer.make(Job("second", steps=6, seed=11, kl_coef=0.3, rlhf=True))


@pytest.fixture(scope="session")
def strong_runs(producer) -> list[Path]:
    return [
        producer.make(Job(f"strong-ws{p}", ranks=p, steps=4, batch_prompts=4, eval_every=0))
        for p in SCALING_SIZES
    ]


@pytest.fixture(scope="session")
def weak_runs(producer) -> list[Path]:
    return [
        producer.make(Job(f"weak-ws{p}", ranks=p, steps=4, batch_prompts=3 * p, eval_every=0))
        for p in SCALING_SIZES
    ]


# The runs stopped by a signal are long enough (40 steps of a tiny model) that the signal, sent
# once `after` steps are committed, arrives well before the last step.
@pytest.fixture(scope="session")
def preempted_live(producer) -> Live:
    """A run loaded again and again while it goes, then preempted."""
    from alignpro_analysis import load

    live = Live(Path())

    def watch(path):
        run = load(path)
        metrics = run.metrics
        top = int(metrics["step"].max()) if len(metrics) else 0
        live.reads.append((run.status, run.steps_done, len(metrics), top, run.status_line()))

    live.path = producer.make(
        Job("preempted", steps=40, eval_every=0, stop="preempted", after=3), watch=watch
    )
    return live


@pytest.fixture(scope="session")
def preempted_run(preempted_live) -> Path:
    return preempted_live.path


@pytest.fixture(scope="session")
def killed_run(producer) -> Path:
    return producer.make(Job("killed", steps=40, eval_every=0, stop="killed", after=3))


@pytest.fixture(scope="session")
def resumed_live(producer) -> Live:
    """A run preempted with SIGTERM, then started again to its end; `reads` holds the Run that
    the analysis loaded between the two, before it read any table."""
    from alignpro_analysis import load

    job = Job("resumed", steps=40, eval_every=5, stop="preempted", after=3)
    live = Live(producer.make(job))
    live.reads.append(load(live.path))
    producer.make(job, resume=True)
    return live


@pytest.fixture(scope="session")
def resumed_run(resumed_live) -> Path:
    return resumed_live.path


@pytest.fixture(scope="session")
def fresh_run(producer) -> Path:
    """A run killed before its first step was committed (a first step that takes a while)."""
    return producer.make(Job("fresh", steps=40, batch_prompts=8, samples=8, stop="killed"))


@pytest.fixture(scope="session")
def failed_run(producer) -> Path:
    return producer.make(Job("failed", steps=8, checkpoint_every=2, stop="failed", after=2))
