"""Per-subject embeddings: `lcm-hf embed` and `embed_files` write one parquet row per subject (scans pooled), the
values equal the model's states averaged over windows, and a linear probe trains on them."""

import numpy as np
import pandas as pd
import pytest
import torch

from lcm_hf import LcmForBeiPrediction, LcmProcessor
from lcm_hf.cli import main
from lcm_hf.embeddings import embed_files, read_embeddings, readout_states, subject_id_of
from lcm_testing import TINY_BEIS, make_tiny_config

N = 16


@pytest.fixture
def folder(tmp_path):
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(readout_policy="best_layer", readout_layers={"sex": 1})).eval()
    model.save_pretrained(tmp_path / "model")
    LcmProcessor(vocabulary=TINY_BEIS, num_rois=N, window_size=25).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_embed_writes_one_row_per_subject_equal_to_window_means(folder, tmp_path):
    rng = np.random.default_rng(0)
    runs = {name: rng.standard_normal((length, N)).astype(np.float32)
            for name, length in (("sub-01_run-1", 50), ("sub-01_run-2", 25), ("sub-02_run-1", 75))}
    files = []
    for name, array in runs.items():
        np.save(tmp_path / f"{name}.npy", array)
        files.append(str(tmp_path / f"{name}.npy"))
    output = tmp_path / "out" / "embeddings.parquet"
    assert main(["embed", "--model", str(folder), "--timeseries", *files, "--output", str(output)]) == 0
    table = read_embeddings(output)
    assert table["subject_id"] == ["01", "02"] and table["num_windows"].tolist() == [3, 3]
    assert table["bei_states"].shape == (2, 6, 32) and table["fc_features"].shape == (2, 32)
    assert table["token_names"] == ["sex=F", "sex=M", "diagnosis=control", "diagnosis=mci", "diagnosis=ad", "age"]
    # by hand: sub-01's windows are run-1 [0:25], [25:50] and run-2 [0:25]
    model = LcmForBeiPrediction.from_pretrained(folder).eval()
    windows = [runs["sub-01_run-1"][:25], runs["sub-01_run-1"][25:], runs["sub-01_run-2"]]
    fc = torch.tensor(np.stack([np.corrcoef(w.T) for w in windows]), dtype=torch.float32)
    with torch.no_grad():
        out = model.model(fc, return_dict=True)
        states = readout_states(model, out.layer_hidden_states)
        sex = model.readout_norm(out.layer_hidden_states)[:, 1, :2]  # the selected layer of "sex"
    torch.testing.assert_close(states[:, :2], sex)
    np.testing.assert_allclose(table["bei_states"][0], states.mean(0).numpy(), atol=1e-4)
    np.testing.assert_allclose(table["fc_features"][0], out.memory.mean(1).mean(0).numpy(), atol=1e-4)
    with pytest.raises(SystemExit, match="exists; pass overwrite=True"):
        main(["embed", "--model", str(folder), "--timeseries", *files, "--output", str(output)])
    assert not list(output.parent.glob(".*tmp*"))


def test_linear_probe_on_embeddings_runs(folder, tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    files, sexes = [], []
    for i in range(12):
        np.save(tmp_path / f"sub-{i:02d}.npy", rng.standard_normal((50, N)).astype(np.float32))
        files.append(tmp_path / f"sub-{i:02d}.npy")
        sexes.append("F" if i % 2 else "M")
    path = embed_files(folder, files, tmp_path / "e.parquet", device="cpu")
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["subject_id", "num_windows", "bei_states", "fc_features"]
    for column in ("fc_features", "bei_states"):
        features = np.stack(frame[column].to_numpy())
        probe = LogisticRegression(max_iter=200).fit(features, sexes)
        assert probe.predict(features).shape == (12,) and 0.0 <= probe.score(features, sexes) <= 1.0
    assert subject_id_of("x/sub-07_ses-1_bold.tsv") == "07" and subject_id_of("x/rois_a.1D") == "rois_a"
