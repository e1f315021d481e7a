"""`make demo` on a busy machine: wall time with two CPU-bound competitors / wall time idle, old vs new thread policy.

Runs what ``make demo`` runs (``lcm-hf demo --output-dir ...``, the full demo; ``--quick``: the demo's own
``--quick`` smoke size, 2 epochs per stage) four times (``--quick``: the new policy only, twice), each in a
fresh process:

1. idle, new policy; 2. idle, old policy (the new policy first: it reads the machine's load, and the 1-minute
load average still counts a demo that just ended); then two competitor processes start (pure-Python busy loops,
one CPU each, bounded in time and killed at the end) and, after ``--warmup`` s, 3. busy, old policy; 4. busy, new
policy.

- **old policy**: torch's default thread count and OpenMP waiting, as the scripts ran before
  (``OMP_NUM_THREADS`` = the CPUs available to the process, ``GOMP_SPINCOUNT=300000``: libgomp's spinning when no
  waiting policy is set);
- **new policy**: the scripts' default (`lcm_hf.console.thread_policy`): threads from the CPUs available,
  reduced to the CPUs the machine's load leaves free, one inter-op thread, passive OpenMP waiting; no thread
  variable set in the environment.

A busy run is stopped after ``--cap`` (default 3) times its idle time (the ratio is then given as ``> cap``):
the goal (issue 19 item 8) is busy / idle under 3x with the new policy, and a run past it has missed it. Prints the ratios and writes ``--output`` (default:
the full run to ``benchmarks/RESULTS_busy_machine.md``; ``--quick`` to nothing unless ``--output`` is given), with
the CPU model and the load averages before each run. A benchmark, not a test: nothing asserts. The full run takes
about 6 x the idle demo (at most 8 x) plus the competitors' 20 s warm-up: 11 minutes (at most 14.5) where the
idle demo takes 1 min 45 s; ``--quick`` (2 runs) about 3 minutes on a quiet 2-core machine.

Usage:
    python benchmarks/bench_busy_machine.py            # the full demo (the integrator's run, on a quiet machine)
    python benchmarks/bench_busy_machine.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_NUM_THREADS")
COMPETITOR = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_text() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def policy_env(policy: str) -> dict:
    """The environment of a demo run under ``policy`` ("old" or "new"); the user's thread variables removed."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if policy == "old":  # torch's default count and libgomp's default spinning, made explicit
        env.update(OMP_NUM_THREADS=str(len(os.sched_getaffinity(0))), GOMP_SPINCOUNT="300000")
    return env


def demo_command(output_dir: Path, quick: bool) -> list[str]:
    command = [sys.executable, "-c", "import sys; from lcm_hf.cli import main; sys.exit(main())", "demo",
               "--output-dir", str(output_dir)]
    if quick:
        command += ["--quick", "--pretrain-epochs", "2", "--finetune-epochs", "2", "--momentum-epochs", "1"]
    return command


def run_demo(policy: str, output_dir: Path, quick: bool, limit: float | None) -> dict:
    """One demo run in a fresh process: wall seconds (None when stopped at ``limit``), the torch threads it said."""
    load = load_text()
    start = time.perf_counter()
    log = output_dir.with_suffix(".log")
    with open(log, "w") as out:
        process = subprocess.Popen(demo_command(output_dir, quick), cwd=ROOT, env=policy_env(policy), stdout=out,
                                   stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            pass
        finally:  # stopped at the limit, or the benchmark interrupted: no demo left running
            stop([process])
    wall = time.perf_counter() - start
    text = log.read_text(errors="replace")
    said = re.search(r"^torch threads: (\d+) per process \((.*?);", text, re.M)
    steps = [float(seconds) for seconds in re.findall(r"^trained \d+ steps in ([\d.]+) s", text, re.M)]
    if process.returncode not in (0, -9):
        raise SystemExit(f"error: the demo ({policy} policy) failed with status {process.returncode}:\n{text[-3000:]}")
    return {"policy": policy, "wall": wall if process.returncode == 0 else None, "limit": limit, "load": load,
            "threads": int(said.group(1)) if said else None, "why": said.group(2) if said else "?",
            "training": sum(steps) if steps and process.returncode == 0 else None}


def start_competitors(count: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", COMPETITOR.format(seconds=seconds)]) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def ratio_text(busy: dict, idle: dict, cap: float) -> str:
    return f"> {cap:.1f}x (stopped)" if busy["wall"] is None else f"{busy['wall'] / idle['wall']:.2f}x"


def report(runs: dict, args, total: float, before: str) -> str:
    size = "`lcm-hf demo --quick` with 2 epochs per stage" if args.quick else "`lcm-hf demo` (what `make demo` runs)"
    lines = [
        f"# `make demo` on a busy machine ({'--quick smoke run' if args.quick else 'full run'})",
        "",
        f"`python benchmarks/bench_busy_machine.py{' --quick' if args.quick else ''}` on {cpu_model()}, "
        f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} available to the process); {size}; "
        f"{args.competitors} competitors (pure-Python busy loops, one CPU each, {args.warmup:.0f} s warm-up); "
        f"load before the run {before}; {total / 60:.1f} min in all.",
        "",
        "| machine | policy | torch threads (why) | load at start | wall (s) | busy / idle | training steps (s) "
        "| busy / idle |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for key in [f"{machine}-{policy}" for machine in ("idle", "busy") for policy in args.policies]:
        run = runs[key]
        machine, policy = key.split("-")
        idle = runs[f"idle-{policy}"]
        wall = f"> {run['limit']:.0f}" if run["wall"] is None else f"{run['wall']:.0f}"
        ratio = "" if machine == "idle" else ratio_text(run, idle, args.cap)
        training = "" if run["training"] is None else f"{run['training']:.0f}"
        steps = "" if machine == "idle" or not run["training"] else f"{run['training'] / idle['training']:.2f}x"
        lines.append(f"| {machine} | {policy} | {run['threads']} ({run['why']}) | {run['load']} | {wall} | {ratio} "
                     f"| {training} | {steps} |")
    lines += [
        "",
        "- old policy: torch's default thread count (`OMP_NUM_THREADS` = the CPUs available) and libgomp's default "
        "spinning (`GOMP_SPINCOUNT=300000`), as the scripts ran before;",
        "- new policy: the scripts' default (`lcm_hf.console.thread_policy`): threads from the CPUs "
        "available, reduced to those the load leaves free, one inter-op thread, `OMP_WAIT_POLICY=PASSIVE`;",
        "- training steps: the sum of the demo's `trained N steps in S s` lines (torch's share of the wall time; "
        "the rest is imports, simulation, evaluation, calibration, saving and the report).",
        "",
    ]
    goal = {"new": " (goal: under 3x)", "old": ""}
    lines += [f"- {policy} policy: busy / idle = {ratio_text(runs[f'busy-{policy}'], runs[f'idle-{policy}'], args.cap)}"
              f"{goal[policy]}" for policy in args.policies] + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo's --quick size, 2 epochs per stage")
    parser.add_argument("--policies", nargs="+", choices=("old", "new"), default=None,
                        help="the thread policies to run (default: old new; quick: new)")
    parser.add_argument("--competitors", type=int, default=2, help="CPU-bound competitor processes (default 2)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds the competitors run before the first busy run (default 20; quick 5)")
    parser.add_argument("--cap", type=float, default=3.0, help="stop a busy run after CAP x its idle time (3)")
    parser.add_argument("--output", default=None,
                        help="the Markdown file (default: full run benchmarks/RESULTS_busy_machine.md; quick none)")
    parser.add_argument("--workdir", default=None, help="where the demo runs write (default: a temporary folder)")
    args = parser.parse_args(argv)
    args.policies = args.policies or (["new"] if args.quick else ["old", "new"])
    args.warmup = args.warmup if args.warmup is not None else (5.0 if args.quick else 20.0)
    output = args.output if args.output is not None else ("" if args.quick else
                                                          str(ROOT / "benchmarks" / "RESULTS_busy_machine.md"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("error: terminated"))  # the competitors are stopped then too
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_busy_"))
    work.mkdir(parents=True, exist_ok=True)
    before = load_text()
    print(f"{cpu_model()}; load before the run {before}", flush=True)
    start = time.perf_counter()
    runs, competitors = {}, []
    try:
        for policy in sorted(args.policies, key=lambda name: name != "new"):  # new first
            runs[f"idle-{policy}"] = run = run_demo(policy, work / f"idle-{policy}", args.quick, None)
            print(f"idle, {policy} policy: {run['wall']:.0f} s, {run['threads']} threads ({run['why']})", flush=True)
        limits = {policy: args.cap * runs[f"idle-{policy}"]["wall"] for policy in args.policies}
        competitors = start_competitors(args.competitors, args.warmup + sum(limits.values()) + 60)
        time.sleep(args.warmup)
        for policy in args.policies:
            runs[f"busy-{policy}"] = run = run_demo(policy, work / f"busy-{policy}", args.quick, limits[policy])
            ratio = ratio_text(run, runs[f"idle-{policy}"], args.cap)
            print(f"busy, {policy} policy: busy / idle = {ratio}, {run['threads']} threads ({run['why']})", flush=True)
    finally:
        stop(competitors)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    text = report(runs, args, time.perf_counter() - start, before)
    print(text)
    if output:
        Path(output).write_text(text)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
