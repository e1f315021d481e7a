"""A user's own data, as files a test writes: BIDS-named ROI time series and a phenotype table.

Used by the tests that run the console commands on files (build_dataset.py -> pretrain.py -> finetune.py
-> lcm-hf predict), the way a user does.
"""

import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_ROIS = 8
TINY_MODEL = ["--hidden_size", "16", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "32"]
TINY_TRAINING = [
    "--num_train_epochs", "2", "--momentum_epochs", "1", "--per_device_train_batch_size", "8",
    "--use_cpu", "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
]


def write_cohort(folder, n_subjects=12, runs=2, n_timepoints=80, seed=0, per_scan_table=False):
    """`sub-XX_task-rest_run-R_bold.tsv` files (T x NUM_ROIS, a header of ROI labels) and `participants.tsv`
    (participant_id, sex, diagnosis, age): one row per subject, or per scan with a `scan` column."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    rows = []
    for s in range(n_subjects):
        subject = f"{s + 1:02d}"
        sex, diagnosis = "FM"[s % 2], ("patient", "control")[(s // 2) % 2]
        for run in range(1, runs + 1):
            series = rng.standard_normal((n_timepoints, NUM_ROIS)) + 100.0  # raw, not demeaned
            if diagnosis == "patient":
                series[:, 1] += 0.8 * series[:, 0]
            header = "\t".join(f"roi_{i}" for i in range(NUM_ROIS))
            np.savetxt(os.path.join(folder, f"sub-{subject}_task-rest_run-{run}_bold.tsv"), series,
                       delimiter="\t", header=header, comments="")
            if per_scan_table:
                rows.append(f"sub-{subject}\ttask-rest_run-{run}\t{sex}\t{diagnosis}\t{30 + s}")
        if not per_scan_table:
            rows.append(f"sub-{subject}\t{sex}\t{diagnosis}\t{30 + s}")
    header = "participant_id\tscan\tsex\tdiagnosis\tage" if per_scan_table else "participant_id\tsex\tdiagnosis\tage"
    table = os.path.join(folder, "participants.tsv")
    with open(table, "w") as handle:
        handle.write("\n".join([header, *rows]) + "\n")
    return table


def load_script(relative_path):
    """Import a script (e.g. "training/pretrain.py") as `python <script>` sees it: its folder on sys.path."""
    import importlib.util

    folder = os.path.join(ROOT, os.path.dirname(relative_path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(relative_path))[0]
    spec = importlib.util.spec_from_file_location(f"script_{name}", os.path.join(ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(script, *args, check=True):
    """Run `python <script> args...` from the repository root as a user does; returns the CompletedProcess."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *map(str, args)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    if check and process.returncode != 0:
        raise AssertionError(f"{script} exited {process.returncode}:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    return process
