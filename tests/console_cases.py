"""Run many console cases (argv lists of build_dataset.py, pretrain.py, finetune.py, lcm-hf) in ONE subprocess.

Each case goes through the entry's console path as a user's command line does (``lcm_hf.console.run_main`` on the
script's ``main``: one-line ``error: ...``, exit status 2, warnings as ``warning: ...``), in its own working folder;
its exit status, stdout and stderr are captured. One process pays the imports (torch, datasets) once, so a table of
cheap cases stays fast.

    results = run_cases([{"id": "x", "command": "build_dataset", "argv": [...], "cwd": "/tmp/x"}, ...])

A case may add ``"without": ["openpyxl"]``: those modules cannot be imported while it runs (an optional package
absent).
    results["x"] == {"rc": 2, "stdout": "...", "stderr": "error: ..."}

Run as a script: ``python tests/console_cases.py cases.json results.json``.
"""

import contextlib
import io
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {"build_dataset": "processing/build_dataset.py", "pretrain": "training/pretrain.py",
           "finetune": "training/finetune.py"}


def _entry(command):
    if command == "lcm-hf":
        from lcm_hf.cli import run

        return run
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from own_data import load_script

    return load_script(SCRIPTS[command]).main


def run_cases(cases, timeout=1500):
    """Run `cases` (dicts: id, command, argv, cwd) in one subprocess; returns {id: {rc, stdout, stderr}}."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "cases.json"), os.path.join(folder, "results.json")
        with open(source, "w") as handle:
            json.dump(cases, handle)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
        process = subprocess.run([sys.executable, os.path.abspath(__file__), source, target], capture_output=True,
                                 text=True, env=env, cwd=ROOT, timeout=timeout)
        if process.returncode != 0 or not os.path.isfile(target):
            raise AssertionError(f"the case runner failed ({process.returncode}):\n{process.stderr[-4000:]}")
        with open(target) as handle:
            return json.load(handle)


def main(source, target):
    from lcm_hf.console import run_main

    with open(source) as handle:
        cases = json.load(handle)
    results = {}
    for case in cases:
        out, err = io.StringIO(), io.StringIO()
        previous = os.getcwd()
        os.chdir(case["cwd"])
        hidden = {name: sys.modules.get(name) for name in case.get("without", ())}  # optional packages absent
        sys.modules.update({name: None for name in hidden})  # `import name` raises ImportError for this case
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = run_main(_entry(case["command"]), case["argv"])
        except BaseException as error:  # a traceback is a failure of the case, reported as such
            import traceback

            rc, err = -1, io.StringIO(err.getvalue() + "".join(traceback.format_exception(error)))
        finally:
            os.chdir(previous)
            for name, module in hidden.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        results[case["id"]] = {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}
    with open(target, "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
