"""How soon vrsim answers: the figures ``vrsim bench --startup`` reports.

What a new user meets first is not the packet rate but the wait: ``--help``, a ``get``, the
first ``run`` on a fresh install, the first ``trace``, a run once the kernels are compiled,
and the compile itself. Each is measured the way a user meets it: a fresh process (the
``vrsim`` command), a kernel cache directory of its own, empty unless the figure is about a
warm cache (runs print JSON, which names the engine that answered). Wall time is the user's
wait; CPU time and peak RSS come from the operating system's accounting of that one process
(``wait4``), so a background compile the command starts is not counted as the command's — it
is measured on its own, as ``vrsim warmup``.

This module is plain Python and never imports numba: every number comes from a child.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from vrouter.dataplane.background_compile import compile_process
from vrouter.figures import BenchResult

ARTICLE_SCENARIO = Path("scenarios") / "article" / "namespace-isolation.yaml"


def default_scenario() -> Path:
    """The article's namespace-isolation scenario: in the working directory (a clone of vrsim),
    else beside the package (a source tree), else written out (an installed vrsim has no
    ``scenarios/``): the same namespaces, pods and pings, in a temporary folder."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (root / ARTICLE_SCENARIO).is_file():
            return root / ARTICLE_SCENARIO
    return write_isolation_scenario(Path(tempfile.mkdtemp(prefix="vrsim-bench-")))


def write_isolation_scenario(directory: Path) -> Path:
    """The article's ping test as a scenario file in ``directory``: a busybox in ``default``, in
    a non-isolated and in an isolated namespace, and the four pings between them."""

    def busybox(namespace: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "busybox", "namespace": namespace},
                "spec": {"containers": [{"name": "busybox", "image": "busybox", "command": ["sleep", "3600"]}]}}

    isolated = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-isolated", "annotations": {"opencontrail.org/isolation": "true"}}}
    plain = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-non-isolated"}}
    pings = [("ns-isolated", "ns-non-isolated", False), ("default", "ns-isolated", False), ("default", "ns-non-isolated", True), ("ns-non-isolated", "default", True)]
    scenario = {
        "apiVersion": "vrsim/v1",
        "kind": "Scenario",
        "metadata": {"name": "namespace-isolation"},
        "steps": [
            {"apply": "objects.yaml"},
            *({"ping": {"from": f"{a}/busybox", "to": f"{b}/busybox"}, "expect": "reachable" if ok else {"reachable": False, "dropReason": "NoRoute"}} for a, b, ok in pings),
        ],
    }
    (directory / "objects.yaml").write_text(yaml.safe_dump_all([isolated, plain, *(busybox(ns) for ns in ("default", "ns-isolated", "ns-non-isolated"))]))
    path = directory / "namespace-isolation.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path

# the targets a first minute is held to (issue: first answer in seconds)
HELP_CPU_SECONDS = 0.3
GET_SECONDS = 1.5
FIRST_ANSWER_SECONDS = 20.0
FIRST_ANSWER_MIB = 1024.0
WARM_RUN_SECONDS = 0.8
WARM_REPEATS = 7


@dataclass
class Measured:
    """One command in one fresh process."""

    wall: float  # seconds, start to exit
    cpu: float  # user + system seconds of that process alone
    rss_mib: float  # its peak resident memory
    exit_code: int
    stdout: str
    stderr: str


def vrsim_command() -> list[str]:
    """How a user starts vrsim here: the installed ``vrsim`` script beside this Python, else
    the module (a source tree)."""
    script = Path(sys.executable).with_name("vrsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vrouter.cli.main"]


# Linux keeps a process's peak RSS across exec, so a child forked from a large process (the
# test suite, a benchmark) would report its parent's size. The measured command is therefore
# started by this small launcher, which reports the wall time and wait4's accounting of it.
LAUNCHER = """
import json, os, subprocess, sys, time
report, args = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
child = subprocess.Popen(args)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as out:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kib": usage.ru_maxrss,
               "exit_code": os.waitstatus_to_exitcode(status)}, out)
"""


def measure(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Measured:
    """Run ``args`` to completion and account for that process alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "measured.json"
        subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, check=False)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if not report.exists():
            raise RuntimeError(f"could not measure {args[0]}: {stderr[-2000:]}")
        got = json.loads(report.read_text())
        return Measured(
            wall=got["wall"],
            cpu=got["cpu"],
            rss_mib=got["rss_kib"] / 1024,  # Linux reports KiB
            exit_code=got["exit_code"],
            stdout=stdout,
            stderr=stderr,
        )


def wait_for_compile_to_exit(cache: str, timeout: float = 60.0) -> None:
    """Wait until no compile process of this cache directory is left. ``vrsim warmup`` returns
    when the compile lets go of its lock, but the process then still takes a moment to leave
    (600 MiB to give back), and runs measured meanwhile are ~0.1–0.3 s slower."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = False
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if b"vrouter.warmup" in (proc / "cmdline").read_bytes() and f"VRSIM_CACHE_DIR={cache}".encode() in (proc / "environ").read_bytes():
                    alive = True
                    break
            except OSError:  # gone meanwhile, or not ours to read
                continue
        if not alive:
            return
        time.sleep(0.05)


def trace_endpoints(scenario: Path) -> tuple[str, str]:
    """The first ping or connect of a scenario: what its first ``trace`` follows."""
    doc = yaml.safe_load(scenario.read_text())
    for step in doc.get("steps") or []:
        for kind in ("ping", "connect"):
            if isinstance(step, dict) and isinstance(step.get(kind), dict):
                return str(step[kind]["from"]), str(step[kind]["to"])
    raise ValueError(f"{scenario}: no ping or connect step to trace")


class StartupBench:
    """The figures, in an order that keeps one compile from running beside another figure."""

    def __init__(self, scenario: Path, step: Callable[[str], None] | None = None) -> None:
        self.scenario = scenario
        self.step = step or (lambda _: None)
        self.result = BenchResult()
        self.workdir = Path(tempfile.mkdtemp(prefix="vrsim-startup-"))
        self.vrsim = vrsim_command()

    def env(self, cache: str, **extra: str) -> dict[str, str]:
        """The environment of one measured process: its own kernel cache, the auto engine."""
        env = {k: v for k, v in os.environ.items() if k not in ("VRSIM_ENGINE", "NUMBA_CACHE_DIR", "VRSIM_BACKGROUND_COMPILE")}
        return env | {"VRSIM_CACHE_DIR": str(self.workdir / cache), "COLUMNS": "80"} | extra

    def run_vrsim(self, cache: str, *args: str, **extra: str) -> Measured:
        measured = measure([*self.vrsim, *args], self.env(cache, **extra))
        if measured.exit_code != 0:
            raise RuntimeError(f"vrsim {' '.join(args)} exited {measured.exit_code}:\n{measured.stderr[-2000:]}")
        return measured

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.step(name)
        yield

    def run(self) -> BenchResult:
        try:
            return self._run()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _run(self) -> BenchResult:
        r = self.result
        scenario = str(self.scenario)
        source, target = trace_endpoints(self.scenario)
        with self.phase("vrsim --help"):
            helps = [self.run_vrsim("empty", "--help") for _ in range(3)]
            r.add("--help, CPU", statistics.median(m.cpu for m in helps), "s", HELP_CPU_SECONDS, higher=False,
                  key="help_cpu_seconds", note=f"wall {statistics.median(m.wall for m in helps):.2f} s")
        with self.phase("vrsim get, cold cache"):
            got = self.run_vrsim("get", "get", "pods", "-A", "-f", scenario)
            r.add("get pods -A, cold cache", got.wall, "s", GET_SECONDS, higher=False, key="get_seconds", note=f"{got.rss_mib:.0f} MiB")
            r.numbers["get_mib"] = round(got.rss_mib)
        with self.phase("first vrsim run, empty cache"):
            first = self.run_vrsim("installed", "run", scenario, "--json")
            r.add("first run, empty cache", first.wall, "s", FIRST_ANSWER_SECONDS, higher=False, key="first_run_seconds", note=_engine(first.stdout))
            r.add("  its peak RSS", first.rss_mib, "MiB", FIRST_ANSWER_MIB, higher=False, key="first_run_mib")
        with self.phase("the compile that first run started, in the background"):
            waited = json.loads(self.run_vrsim("installed", "warmup", "--json").stdout)
            r.add("  compile it started", float(waited.get("compileSeconds", float("nan"))), "s", key="background_compile_seconds", note="in the background")
        with self.phase("warm vrsim run"):
            wait_for_compile_to_exit(str(self.workdir / "installed"))
            self.run_vrsim("installed", "run", scenario)  # one unmeasured: the files just written, read once
            warm = [self.run_vrsim("installed", "run", scenario, "--json") for _ in range(WARM_REPEATS)]
            r.add("warm run", statistics.median(m.wall for m in warm), "s", WARM_RUN_SECONDS, higher=False,
                  key="warm_run_seconds", note=f"median of {WARM_REPEATS}; {_engine(warm[-1].stdout)}")
            r.add("  its peak RSS", max(m.rss_mib for m in warm), "MiB", key="warm_run_mib")
            traced = self.run_vrsim("installed", "trace", "-f", scenario, source, target)
            r.add("warm trace", traced.wall, "s", key="warm_trace_seconds", note=f"{traced.rss_mib:.0f} MiB")
        with self.phase("first vrsim trace, empty cache"):
            # no background compile here: the next figure compiles this cache in the foreground
            cold = self.run_vrsim("fresh", "trace", "-f", scenario, source, target, VRSIM_BACKGROUND_COMPILE="0")
            r.add("first trace, empty cache", cold.wall, "s", FIRST_ANSWER_SECONDS, higher=False, key="first_trace_seconds")
            r.add("  its peak RSS", cold.rss_mib, "MiB", FIRST_ANSWER_MIB, higher=False, key="first_trace_mib")
        with self.phase("compiling the kernels (python -m vrouter.warmup)"):
            args, cwd, _ = compile_process()
            compiled = measure(args, self.env("fresh") | {"PYTHONPATH": str(cwd)}, cwd=cwd)
            if compiled.exit_code != 0:
                raise RuntimeError(f"the kernels did not compile:\n{compiled.stderr[-2000:]}")
            r.add("compile (vrsim warmup)", compiled.wall, "s", key="compile_seconds", note=f"CPU {compiled.cpu:.1f} s")
            r.add("  its peak RSS", compiled.rss_mib, "MiB", FIRST_ANSWER_MIB, higher=False, key="compile_mib")
        return r


def _engine(stdout: str) -> str:
    """Which engine a ``run --json`` used."""
    engines = {scenario.get("engine", "unknown") for scenario in json.loads(stdout)["scenarios"]}
    return "+".join(sorted(engines))
