"""The one thread rule (`lcm_hf.console.thread_policy`): the count from the CPUs this process may use,
reduced on a loaded machine, explicit settings winning; passive OpenMP waiting set before torch loads in the
console entries; what `configure_threads` sets in torch and says."""

import json
import os
import subprocess
import sys

import pytest
from own_data import ROOT

from lcm_hf import console
from lcm_hf.console import configure_threads, thread_policy, wait_environment
from lcm_hf.errors_lcm import LcmInputError

PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize(
    ("cpus", "machine_cpus", "load", "local", "threads"),
    [
        (2, 2, 0.0, 1, 2),  # an idle 2-core machine: both
        (2, 2, 0.4, 1, 2),  # a little background work rounds away
        (2, 2, 0.74, 1, 1),  # more than half a CPU busy: one thread
        (2, 2, 13.0, 1, 1),  # the reported load-13 machine: one thread, never 0
        (16, 16, 5.2, 1, 11),  # 10.8 CPUs free
        (8, 8, None, 2, 4),  # load unknown: the CPUs divided by the local processes
        (8, 8, 4.0, 2, 2),  # 4 free CPUs shared by 2 local processes
        (4, 64, 10.0, 1, 4),  # a 4-CPU affinity on a big host: the affinity bounds it
        (None, None, None, 1, 1),  # nothing known: one thread
    ],
)
def test_default_count_from_affinity_and_load(cpus, machine_cpus, load, local, threads):
    policy = thread_policy(environ={}, cpus=cpus, machine_cpus=machine_cpus, load=load, local_world_size=local)
    assert policy.threads == threads
    assert policy.env == PASSIVE
    assert policy.source.startswith(f"{cpus or 'unknown'} CPUs available")
    assert ("load" in policy.source) == (load is not None)
    assert load is None or policy.source.endswith(f", load {load:.1f}")


def test_local_world_size_from_the_environment():
    assert thread_policy(environ={"LOCAL_WORLD_SIZE": "4"}, cpus=8).threads == 2
    assert thread_policy(environ={"WORLD_SIZE": "2"}, cpus=8).source == "8 CPUs available / 2 processes"
    assert thread_policy(environ={"LOCAL_WORLD_SIZE": "64"}, cpus=2).threads == 1


def test_explicit_settings_win_over_the_load():
    busy = {"cpus": 2, "machine_cpus": 2, "load": 13.0}
    assert thread_policy(environ={"OMP_NUM_THREADS": "3"}, **busy)[:2] == (3, "OMP_NUM_THREADS")
    assert thread_policy(environ={"OMP_NUM_THREADS": " 4,2 "}, **busy).threads == 4  # OpenMP's nested list
    assert thread_policy(5, environ={"OMP_NUM_THREADS": "3"}, **busy)[:2] == (5, "--num_threads")
    assert thread_policy(environ={"OMP_NUM_THREADS": ""}, **busy).threads == 1  # empty: unset


def test_thread_policy_is_a_tuple_of_its_fields():
    policy = thread_policy(environ={}, cpus=2)
    assert (policy.threads, policy.source, policy.env) == (2, "2 CPUs available", PASSIVE)


@pytest.mark.parametrize("value", ["x", "0", "-2", "1.5"])
def test_a_bad_omp_num_threads_is_a_user_error(value):
    message = f"OMP_NUM_THREADS: expected a positive whole number of threads, got {value!r}; unset it for the default"
    with pytest.raises(LcmInputError) as error:
        thread_policy(environ={"OMP_NUM_THREADS": value}, cpus=2)
    assert str(error.value) == message


def test_a_bad_omp_num_threads_is_one_error_line_at_the_console(monkeypatch, capsys):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "four")
    assert console.run_main(lambda argv: configure_threads(None), []) == 2
    assert capsys.readouterr().err == ("error: OMP_NUM_THREADS: expected a positive whole number of threads, got "
                                       "'four'; unset it for the default\n")
    assert torch.get_num_threads() == before


def test_a_bad_num_threads_is_a_user_error():
    with pytest.raises(LcmInputError, match="^--num_threads: expected a positive number of threads, got 0$"):
        thread_policy(0, environ={}, cpus=2)


@pytest.mark.parametrize("name", ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"])
def test_a_users_waiting_setting_is_kept(name):
    assert wait_environment({name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "300000"}) == {}
    assert thread_policy(environ={name: "1"}, cpus=2).env == {}
    assert wait_environment({"OMP_NUM_THREADS": "2"}) == PASSIVE


def test_machine_load_is_the_larger_of_the_average_and_the_tasks_runnable_now(monkeypatch):
    monkeypatch.setattr(console.os, "getloadavg", lambda: (0.3, 0.2, 0.1))
    monkeypatch.setattr(console, "_runnable_now", lambda: 2.0)  # competitors that started seconds ago
    assert console.machine_load() == 2.0
    monkeypatch.setattr(console, "_runnable_now", lambda: None)  # no /proc
    assert console.machine_load() == 0.3


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="no /proc/loadavg")
def test_runnable_now_excludes_this_process():
    assert 0 <= console._runnable_now(samples=1) < 10_000


def test_an_explicit_count_reads_no_load(monkeypatch):
    def refuse():
        raise AssertionError("the load is read only when it decides the count")

    monkeypatch.setattr(console, "machine_load", refuse)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert console.current_thread_policy().threads == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert console.current_thread_policy(3).threads == 3


def test_configure_threads_sets_torch_and_says_why(capsys, monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(console, "available_cpus", lambda: 3)
    monkeypatch.setattr(console, "machine_load", lambda: 1.2)
    monkeypatch.setattr(console.os, "cpu_count", lambda: 3)
    before = torch.get_num_threads()
    try:
        assert configure_threads(None) == 2 == torch.get_num_threads()  # 3 CPUs, 1.8 free
        assert configure_threads(1) == 1 == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert configure_threads(None) == 3 == torch.get_num_threads()
        assert capsys.readouterr().out.splitlines() == [
            "torch threads: 2 per process (3 CPUs available, load 1.2; --num_threads N or OMP_NUM_THREADS=N to change)",
            "torch threads: 1 per process (--num_threads; --num_threads N or OMP_NUM_THREADS=N to change)",
            "torch threads: 3 per process (OMP_NUM_THREADS; --num_threads N or OMP_NUM_THREADS=N to change)",
        ]
        assert configure_threads(2, flag="--num-threads") == 2
        assert configure_threads(None, flag=None) == 3
        assert capsys.readouterr().out.splitlines() == [
            "torch threads: 2 per process (--num-threads; --num-threads N or OMP_NUM_THREADS=N to change)",
            "torch threads: 3 per process (OMP_NUM_THREADS; OMP_NUM_THREADS=N to change)",
        ]
        with pytest.raises(ValueError, match="--num_threads: expected a positive number of threads, got 0"):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


# A console entry run in a fresh process, stopped where the script has set its threads (quiet_libraries follows
# configure_threads in both the training scripts' prepare_run and the demo): what torch and the environment hold.
ENTRY = r"""
import json, os, runpy, sys
from lcm_hf import console
from lcm_hf.training import runtime

prepare = console.prepare_thread_environment
seen = {}

def recorded_prepare():
    seen["torch_loaded_before"] = "torch" in sys.modules
    seen["set"] = prepare()
    return seen["set"]

def stop():
    import torch
    seen.update(threads=torch.get_num_threads(), interop=torch.get_num_interop_threads(),
                wait=os.environ.get("OMP_WAIT_POLICY"))
    print("STATE " + json.dumps(seen), flush=True)
    raise SystemExit(0)

console.prepare_thread_environment, runtime.quiet_libraries = recorded_prepare, stop
sys.argv = sys.argv[1:]
if sys.argv[0] == "lcm-hf":
    from lcm_hf.cli import main
    sys.exit(main())
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def entry_state(argv, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=ROOT, **env)
    done = subprocess.run([sys.executable, "-c", ENTRY, *argv], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    states = [line[6:] for line in done.stdout.splitlines() if line.startswith("STATE ")]
    assert len(states) == 1, done.stdout[-2000:]
    return json.loads(states[0]), done.stdout


def test_the_demo_sets_passive_waiting_before_torch_loads(tmp_path):
    state, out = entry_state(["lcm-hf", "demo", "--quick", "--output-dir", str(tmp_path / "demo")])
    assert state["torch_loaded_before"] is False
    assert state["set"] == PASSIVE and state["wait"] == "PASSIVE"
    assert 1 <= state["threads"] <= len(os.sched_getaffinity(0)) and state["interop"] == 1
    assert f"torch threads: {state['threads']} per process (" in out
    assert "; --num-threads N or OMP_NUM_THREADS=N to change)" in out


@pytest.mark.slow
def test_a_training_script_keeps_the_users_settings(tmp_path):
    script = os.path.join(ROOT, "training", "pretrain.py")
    state, out = entry_state([script, "--demo", "--output_dir", str(tmp_path / "run")], OMP_NUM_THREADS="1",
                             OMP_WAIT_POLICY="ACTIVE")
    assert state["torch_loaded_before"] is False
    assert state["set"] == {} and state["wait"] == "ACTIVE"
    assert (state["threads"], state["interop"]) == (1, 1)
    assert "torch threads: 1 per process (OMP_NUM_THREADS; --num_threads N or OMP_NUM_THREADS=N to change)" in out


def test_predict_and_embed_set_torch_threads_by_the_one_rule(tmp_path, monkeypatch, capsys):
    """`lcm-hf predict` / `lcm-hf embed` set torch's threads (``--num-threads``, else the rule) before any work,
    printing nothing (their output is the predictions)."""
    import torch

    from lcm_hf.cli import run

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(console, "available_cpus", lambda: 4)
    monkeypatch.setattr(console, "machine_load", lambda: 2.9)
    monkeypatch.setattr(console.os, "cpu_count", lambda: 4)
    missing = str(tmp_path / "missing.tsv")
    before = torch.get_num_threads()
    try:
        for argv, threads in ((["predict", "--model", "m", "--timeseries", missing, "--num-threads", "3"], 3),
                              (["predict", "--model", "m", "--timeseries", missing], 1),  # 4 CPUs, 1.1 free
                              (["embed", "--model", "m", "--timeseries", missing, "--output", "e.parquet",
                                "--num-threads", "2"], 2)):
            with pytest.raises(SystemExit, match="^error: "):  # a missing file or model, after the threads
                run(argv)
            assert torch.get_num_threads() == threads, argv
            assert capsys.readouterr().out == ""
    finally:
        torch.set_num_threads(before)
