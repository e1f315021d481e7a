"""The `lcm-hf` console command: `demo --quick` writes the report; `predict` prints per-BEI predictions."""

import json
import os

import numpy as np
import pytest

from lcm_hf.cli import main
from lcm_hf.data.readers import read_timeseries_file as read_timeseries


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--output-dir", str(output), "--quick"]) == 0
    return output


def test_demo_writes_report_json_and_figures(quick_demo):
    report = json.loads((quick_demo / "report.json").read_text())
    assert report["simulated_data"] is True
    assert set(report["finetuning"]) == {"semi_supervised", "linear_probe", "scratch"}
    assert "parkinson/subject/balanced_accuracy" in report["baseline"]
    assert (
        "test_parkinson/subject/balanced_accuracy" in report["finetuning"]["semi_supervised"]["test_metrics"]
    )
    assert {v["bei"] for v in report["verdicts"]} >= {"parkinson", "sex"}
    assert report["figures"] == [
        "layer_metrics.png",
        "loss_curves.png",
        "readout_layers.png",
        "readout_layers_pretraining.png",
    ]
    markdown = (quick_demo / "report.md").read_text()
    assert "SIMULATED" in markdown and "logistic regression on FC" in markdown and "| parkinson |" in markdown
    assert report["split_sizes"]["finetuning"]["test"] > 0


def test_predict_prints_per_bei_predictions(quick_demo, tmp_path, capsys):
    model_dir = quick_demo / "finetuned-semi_supervised"
    rng = np.random.default_rng(0)
    npy, text = tmp_path / "sub-01.npy", tmp_path / "sub-02_rois.1D"
    np.save(npy, rng.standard_normal((90, 116)).astype(np.float32))
    np.savetxt(text, rng.standard_normal((120, 116)), header=" ".join(f"#{i}" for i in range(116)))
    assert main(["predict", "--model", str(model_dir), "--timeseries", str(npy), str(text), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(npy), str(text)]
    assert lines[0]["predictions"]["parkinson"]["label"] in {"PD", "control"}
    assert "value" in lines[1]["predictions"]["age"]


def test_predict_rejects_wrong_roi_count(quick_demo, tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((50, 90), dtype=np.float32))
    with pytest.raises(SystemExit, match="expected 116 ROI columns"):
        main(["predict", "--model", str(quick_demo / "finetuned-semi_supervised"), "--timeseries", str(path)])


def test_read_timeseries_formats(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.savetxt(tmp_path / "a.csv", data, delimiter=",", header="r1,r2,r3", comments="")
    np.savetxt(tmp_path / "a.tsv", data, delimiter="\t")
    assert np.array_equal(read_timeseries(str(tmp_path / "a.csv")), data)
    assert np.array_equal(read_timeseries(str(tmp_path / "a.tsv")), data)
    with pytest.raises(FileNotFoundError):
        read_timeseries(os.path.join(str(tmp_path), "missing.npy"))


def test_predict_refuses_a_model_typo_and_a_connectivity_file(quick_demo, tmp_path):
    """A mistyped --model folder is named (not "couldn't reach the Hub"); an FC matrix file is not read as a
    series of N time points (that would predict silently wrong)."""
    series = tmp_path / "sub-01.npy"
    np.save(series, np.random.default_rng(0).standard_normal((120, 116)).astype(np.float32))
    with pytest.raises(SystemExit, match="--model: expected a model folder \\(or a Hub id online\\), got no folder at"):
        main(["predict", "--model", str(quick_demo / "no-such-model"), "--timeseries", str(series)])
    fc = tmp_path / "sub-02_fc.npy"
    np.save(fc, np.corrcoef(np.random.default_rng(1).standard_normal((116, 200))).astype(np.float32))
    with pytest.raises(SystemExit, match="sub-02_fc.npy looks like a connectivity matrix"):
        main(["predict", "--model", str(quick_demo / "finetuned-semi_supervised"), "--timeseries", str(fc)])
