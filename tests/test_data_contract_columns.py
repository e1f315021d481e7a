"""Importers record what the files say about the preprocessing (ROI labels, atlas, TR), and training writes
it into the processor's contract (preprocessor_config.json)."""

import numpy as np
import pytest

from lcm_hf.data import import_timeseries_folder
from lcm_hf.data.contract import dataset_contract
from lcm_hf.data.readers import read_roi_labels


def write(path, labels, rows=30, seed=0):
    data = np.random.default_rng(seed).standard_normal((rows, len(labels)))
    np.savetxt(path, data, delimiter="\t", header="\t".join(labels), comments="")


def test_header_labels_become_the_datasets_roi_labels(tmp_path):
    labels = ["PreCG_L", "PreCG_R", "SFG_L", "SFG_R"]
    for subject in ("01", "02"):
        write(tmp_path / f"sub-{subject}_task-rest_bold.tsv", labels)
    dataset = import_timeseries_folder(tmp_path)
    assert dataset_contract(dataset)["roi_labels"] == labels


def test_files_disagreeing_on_roi_order_are_refused_by_name(tmp_path):
    write(tmp_path / "sub-01_task-rest_bold.tsv", ["a", "b", "c"])
    write(tmp_path / "sub-02_task-rest_bold.tsv", ["a", "c", "b"])
    with pytest.raises(ValueError, match=r"got \['c'\] at column 1 of .*sub-02_task-rest_bold.tsv where "
                                         r"sub-01_task-rest_bold.tsv has \['b'\]"):
        import_timeseries_folder(tmp_path)


def test_abide_style_hash_header_and_numeric_files(tmp_path):
    path = tmp_path / "x_rois_aal.1D"
    path.write_text("#2001\t#2002\t#2101\n0.1\t0.2\t0.3\n0.3\t0.1\t0.2\n")
    assert read_roi_labels(path) == ["2001", "2002", "2101"]
    plain = tmp_path / "plain.tsv"
    np.savetxt(plain, np.ones((3, 2)), delimiter="\t")
    assert read_roi_labels(plain) is None
