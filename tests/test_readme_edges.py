"""The README's edge-table block ("### One table of edges") runs as written, on a table this test writes; the
published FC equals numpy's float64 correlations and the ROI labels come from the edge names."""

import os
import subprocess
import sys

import numpy as np
from own_data import ROOT
from test_readme_own_data import readme_block


def test_readme_edge_table_block_runs_as_written(tmp_path):
    import pandas as pd

    from lcm_hf.data import load_published

    labels = ["PCC", "mPFC", "L_IPL", "R_IPL"]
    rng = np.random.default_rng(0)
    fc = np.stack([np.corrcoef(rng.standard_normal((80, len(labels))).T) for _ in range(5)])
    rows, cols = np.triu_indices(len(labels), k=1)
    table = {"participant_id": [f"sub-{s:02d}" for s in range(1, 6)], "sex": list("FMFMF"),
             "diagnosis": ["control", "patient", "control", "patient", "control"], "age": [31, 45, 28, 52, 39]}
    table.update({f"{labels[i]}.{labels[j]}": fc[:, i, j] for i, j in zip(rows, cols)})
    pd.DataFrame(table).to_csv(tmp_path / "fc_edges.csv", index=False)
    os.symlink(os.path.join(ROOT, "processing"), tmp_path / "processing")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block("### One table of edges")], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert "num_rows: 5" in process.stdout
    train = load_published(tmp_path / "my_edge_dataset")["train"]
    np.testing.assert_allclose(np.stack([np.asarray(m, dtype=np.float64) for m in train["connectivity"]]), fc, atol=1e-6)
    assert train[0]["roi_labels"] == labels
    assert train["diagnosis"] == table["diagnosis"] and train["age"] == [31.0, 45.0, 28.0, 52.0, 39.0]
