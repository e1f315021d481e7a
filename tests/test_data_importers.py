"""Readers and importers: file formats, BIDS names, ABIDE layout, ROI-count checks."""

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from lcm_hf.data import (
    import_abide_pcp,
    import_timeseries_folder,
    parse_bids_name,
    read_timeseries_file,
)

RNG = np.random.default_rng(0)


def test_parse_bids_name():
    assert parse_bids_name("sub-01_ses-A_task-rest_run-2_bold.tsv") == {
        "sub": "01", "ses": "A", "task": "rest", "run": "2"}
    assert parse_bids_name("/x/sub-7_timeseries.npy") == {"sub": "7"}
    assert parse_bids_name("subject7.npy") == {}


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".txt", ".1D"])
def test_text_formats_with_headers_and_label_columns(tmp_path, suffix):
    data = RNG.standard_normal((20, 5))
    sep = {".tsv": "\t", ".csv": ",", ".txt": " ", ".1D": " "}[suffix]
    path = tmp_path / f"a{suffix}"
    header = sep.join(f"roi{i}" for i in range(5))
    body = "\n".join(sep.join(f"{v:.6f}" for v in row) for row in data)
    path.write_text(f"{header}\n{body}\n")
    np.testing.assert_allclose(read_timeseries_file(path), data, atol=1e-5)
    # '#' header (ABIDE style) and a first column of labels
    labelled = "\n".join(sep.join([f"t{i}"] + [f"{v:.6f}" for v in row]) for i, row in enumerate(data))
    path.write_text(f"# {header}\n{labelled}\n")
    np.testing.assert_allclose(read_timeseries_file(path), data, atol=1e-5)


def test_npy_mat_and_errors(tmp_path):
    data = RNG.standard_normal((15, 4)).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    np.testing.assert_array_equal(read_timeseries_file(tmp_path / "a.npy"), data)
    savemat(tmp_path / "b.mat", {"ts": data, "other": np.arange(3)})
    np.testing.assert_array_equal(read_timeseries_file(tmp_path / "b.mat", mat_key="ts"), data)
    np.testing.assert_array_equal(read_timeseries_file(tmp_path / "b.mat"), data)  # the only 2-D array
    np.testing.assert_array_equal(read_timeseries_file(tmp_path / "a.npy", transpose=True), data.T)
    with pytest.raises(ValueError, match=r"expected key 'bold' in .*b.mat, got keys \['other', 'ts'\]"):
        read_timeseries_file(tmp_path / "b.mat", mat_key="bold")
    with pytest.raises(ValueError, match="expected a time-series file ending in"):
        read_timeseries_file(tmp_path / "a.nii")
    (tmp_path / "ragged.tsv").write_text("1\t2\n3\n")
    with pytest.raises(ValueError, match=r"expected 2 columns on every row of .*ragged.tsv, got 1 on line 2"):
        read_timeseries_file(tmp_path / "ragged.tsv")


def make_folder(tmp_path, n=4, rois=6, suffix=".tsv"):
    folder = tmp_path / "raw"
    folder.mkdir()
    for i in range(n):
        data = RNG.standard_normal((30 + i, rois))
        np.savetxt(folder / f"sub-{i:02d}_task-rest_bold{suffix}", data, delimiter="\t")
    pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)],
                  "sex": ["F", "M"] * (n // 2), "age": np.arange(n) + 20.0,
                  "site": ["s1", "s2"] * (n // 2)}).to_csv(folder / "phenotypes.csv", index=False)
    return folder


def test_import_folder_bids(tmp_path):
    folder = make_folder(tmp_path)
    ds = import_timeseries_folder(folder, folder / "phenotypes.csv", id_column="participant_id")
    assert len(ds) == 4
    assert ds.column_names == ["subject_id", "scan_id", "dataset", "site", "task", "sex", "age", "timeseries"]
    assert ds["scan_id"] == ["task-rest"] * 4
    assert ds["subject_id"] == ["sub-00", "sub-01", "sub-02", "sub-03"]
    assert ds["site"] == ["s1", "s2", "s1", "s2"] and ds["task"] == ["rest"] * 4
    assert ds.features["timeseries"].shape == (None, 6)
    assert np.asarray(ds.with_format("numpy")[3]["timeseries"]).shape == (33, 6)


def test_import_folder_unmatched_and_roi_mismatch(tmp_path):
    folder = make_folder(tmp_path)
    np.savetxt(folder / "sub-99_task-rest_bold.tsv", RNG.standard_normal((30, 6)), delimiter="\t")
    with pytest.warns(RuntimeWarning, match="skipping .*sub-99"):
        ds = import_timeseries_folder(folder, folder / "phenotypes.csv", id_column="participant_id")
    assert len(ds) == 4
    with pytest.raises(ValueError, match="expected a phenotype row for every file"):
        import_timeseries_folder(folder, folder / "phenotypes.csv", id_column="participant_id", unmatched="error")
    (folder / "sub-99_task-rest_bold.tsv").unlink()
    np.savetxt(folder / "sub-03_task-rest_bold.tsv", RNG.standard_normal((30, 5)), delimiter="\t")
    with pytest.raises(ValueError, match=r"expected 6 ROIs \(as in the first file sub-00_task-rest_bold.tsv\), "
                                         r"got 5 in .*sub-03_task-rest_bold.tsv"):
        import_timeseries_folder(folder, folder / "phenotypes.csv", id_column="participant_id")
    with pytest.raises(ValueError, match="expected subject column 'subject' in the phenotype table"):
        import_timeseries_folder(folder, folder / "phenotypes.csv", id_column="subject")


def test_import_mat_folder_plain_ids(tmp_path):
    folder = tmp_path / "mats"
    folder.mkdir()
    for sid in ("A01", "A02"):
        savemat(folder / f"{sid}_roi.mat", {"roi_ts": RNG.standard_normal((25, 7))})
    table = pd.DataFrame({"subject_id": ["A01", "A02"], "dx": ["PD", "control"]})
    ds = import_timeseries_folder(folder, table, mat_key="roi_ts", dataset_name="ppmi")
    assert ds["subject_id"] == ["A01", "A02"] and ds["dx"] == ["PD", "control"] and ds["dataset"] == ["ppmi"] * 2


def make_abide(tmp_path):
    root = tmp_path / "ABIDE_pcp"
    leaf = root / "cpac" / "filt_noglobal"
    leaf.mkdir(parents=True)
    rows = []
    for i, (site, dx, sex) in enumerate([("NYU", 1, 1), ("NYU", 2, 2), ("UCLA", 1, 2)]):
        file_id = f"{site}_{50000 + i:07d}"
        data = RNG.standard_normal((40, 116))
        header = "\t".join(f"#{k}" for k in range(2001, 2117))
        body = "\n".join("\t".join(f"{v:.5f}" for v in row) for row in data)
        (leaf / f"{file_id}_rois_aal.1D").write_text(f"{header}\n{body}\n")
        rows.append({"SUB_ID": 50000 + i, "FILE_ID": file_id, "SITE_ID": site, "DX_GROUP": dx, "SEX": sex,
                     "AGE_AT_SCAN": 20.0 + i})
    rows.append({"SUB_ID": 50009, "FILE_ID": "no_filename", "SITE_ID": "NYU", "DX_GROUP": 1, "SEX": 1,
                 "AGE_AT_SCAN": 30.0})
    pd.DataFrame(rows).to_csv(root / "Phenotypic_V1_0b_preprocessed1.csv", index=False)
    return leaf


def test_import_abide_pcp(tmp_path):
    leaf = make_abide(tmp_path)
    ds = import_abide_pcp(leaf)
    assert len(ds) == 3
    assert ds["diagnosis"] == ["autism", "control", "autism"]
    assert ds["sex"] == ["M", "F", "F"] and ds["site"] == ["NYU", "NYU", "UCLA"]
    assert ds["subject_id"] == ["50000", "50001", "50002"] and ds["file_id"][0] == "NYU_0050000"
    assert np.asarray(ds.with_format("numpy")[0]["timeseries"]).shape == (40, 116)
    with pytest.raises(ValueError, match="expected ABIDE files named '<FILE_ID>_rois_cc200.1D'"):
        import_abide_pcp(leaf, atlas="cc200")
