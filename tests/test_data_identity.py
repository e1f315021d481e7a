"""Identity: subject_id from the subject, scan_id per scan, exact matching, one summary of problems,
identity kept through windows and publishing (issue 9, item 1 and 6)."""

import importlib.util
import warnings
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from lcm_hf.data import (
    check_no_leakage,
    expand_windows,
    file_identity,
    grouped_split,
    import_timeseries_folder,
    load_published,
    normalize_id,
    publish_dataset,
)

RNG = np.random.default_rng(0)
ROOT = Path(__file__).resolve().parents[1]


def write_series(folder: Path, names, t=24, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        np.savetxt(folder / name, RNG.standard_normal((t, n)), delimiter="\t")
    return folder


def import_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all when everything matches
        return import_timeseries_folder(*args, **kwargs)


def test_normalize_id_and_file_identity():
    assert normalize_id("sub-007") == normalize_id(7) == normalize_id("7") == normalize_id(7.0) == "7"
    assert normalize_id(" A01 ") == "A01" and normalize_id(float("nan")) is None and normalize_id("") is None
    ident = file_identity("sub-01_ses-2_task-rest_acq-mb_run-1_bold.tsv")
    assert (ident.subject, ident.scan_id) == ("01", "ses-2_task-rest_acq-mb_run-1")
    assert file_identity("sub-01_bold.npy").scan_id == "sub-01_bold"  # no scan entity: the stem
    assert file_identity("A01_roi.mat").subject_keys == ["A01_roi", "A01"]
    pattern = file_identity("ROISignals_0051456_rest2.mat", r"ROISignals_(?P<subject>\d+)_(?P<scan>\w+)")
    assert (pattern.subject, pattern.scan_id, pattern.subject_keys) == ("0051456", "rest2", ["51456"])


def test_sub13_never_matches_subject_1(tmp_path):
    """Today's token search matched sub-13_task-rest_run-1 to subject '1' (the 'run-1' token)."""
    folder = write_series(tmp_path / "raw", ["sub-1_task-rest_run-1_bold.tsv", "sub-2_task-rest_run-1_bold.tsv",
                                             "sub-13_task-rest_run-1_bold.tsv"])
    table = pd.DataFrame({"subject_id": ["1", "2"], "age": [30.0, 40.0]})
    with pytest.warns(RuntimeWarning, match=r"skipping 1 unmatched file.*sub-13_task-rest_run-1_bold\.tsv"):
        ds = import_timeseries_folder(folder, table)
    assert ds["subject_id"] == ["1", "2"] and ds["age"] == [30.0, 40.0]
    with pytest.raises(ValueError, match=r"1 file without a phenotype row: sub-13_task-rest_run-1_bold\.tsv"):
        import_timeseries_folder(folder, table, unmatched="error")
    with pytest.warns(RuntimeWarning, match="keeping 1 unmatched file"):
        kept = import_timeseries_folder(folder, table, unmatched="keep")
    assert sorted(kept["subject_id"]) == ["1", "13", "2"] and np.isnan(kept["age"][0])  # 13: its own subject


def test_per_scan_table_subjects_are_subjects(tmp_path):
    """One row per scan: runs of one person share subject_id (no leakage), labels stay per scan."""
    names = [f"sub-{s:02d}_task-motor_run-{r}_bold.tsv" for s in range(1, 5) for r in (1, 2)]
    folder = write_series(tmp_path / "raw", names)
    table = pd.DataFrame({"participant_id": [f"sub-{s:02d}" for s in range(1, 5) for _ in (1, 2)],
                          "run": ["run-1", "run-2"] * 4, "direction": ["up", "down"] * 4,
                          "age": [20.0, 20.0, 30.0, 30.0, 40.0, 40.0, 50.0, 50.0]})
    ds = import_quiet(folder, table, subject_column="participant_id", scan_column="run")
    assert ds.column_names[:4] == ["subject_id", "scan_id", "dataset", "site"]
    assert ds["subject_id"] == table["participant_id"].tolist()
    assert ds["scan_id"] == ["task-motor_run-1", "task-motor_run-2"] * 4
    assert ds["direction"] == ["up", "down"] * 4 and "run" in ds.column_names  # the file entity column
    splits = grouped_split(ds, 0.25, 0.25, seed=0)
    check_no_leakage(splits)
    assert all(len(s) % 2 == 0 for s in splits.values())  # both runs of a subject on one side
    # a per-scan table without --scan-column: duplicates reported (with the hint), never the last row
    with pytest.raises(ValueError, match=r"4 duplicate ids in the table \(no row is chosen\).*pass scan_column="):
        import_timeseries_folder(folder, table, subject_column="participant_id", unmatched="error")


def test_per_subject_rows_apply_to_all_scans_and_mixed_tables(tmp_path):
    folder = write_series(tmp_path / "raw", ["sub-01_ses-1_task-rest_bold.tsv", "sub-01_ses-2_task-rest_bold.tsv",
                                             "sub-02_ses-1_task-rest_bold.tsv"])
    table = pd.DataFrame({"subject": ["01", "02"], "sex": ["F", "M"]})
    ds = import_quiet(folder, table)  # 'subject' column found automatically
    assert ds["subject_id"] == ["01", "01", "02"] and ds["sex"] == ["F", "F", "M"]
    assert ds["scan_id"] == ["ses-1_task-rest", "ses-2_task-rest", "ses-1_task-rest"]
    assert ds["session"] == ["1", "2", "1"]
    # per-scan rows for some scans, a subject-level row (empty scan cell) for the rest
    mixed = pd.DataFrame({"subject": ["01", "01", "02"], "scan": ["ses-01_task-rest", None, None],
                          "state": ["drowsy", "alert", "alert"]})
    ds = import_quiet(folder, mixed, scan_column="scan")  # ses-01 == ses-1: entity values compared exactly
    assert ds["state"] == ["drowsy", "alert", "alert"]


def test_duplicates_unmatched_files_and_rows_in_one_summary(tmp_path):
    names = [f"sub-{i:02d}_task-rest_bold.tsv" for i in range(1, 4)] + [f"sub-{i}_task-rest_bold.tsv"
                                                                        for i in range(90, 98)]
    folder = write_series(tmp_path / "raw", names)
    table = pd.DataFrame({"participant_id": ["01", "02", "02", "03", "05"], "age": [1.0, 2.0, 2.5, 3.0, 5.0]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = import_timeseries_folder(folder, table, subject_column="participant_id")
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    summary = messages[0]
    assert "skipping 9 unmatched files" in summary
    assert "8 files without a phenotype row (skipped): sub-90_task-rest_bold.tsv" in summary
    assert "and 3 more" in summary  # the first five names only
    assert "1 duplicate id in the table (no row is chosen): '02' (rows 1, 2)" in summary
    assert "1 file matching a duplicate id (skipped): sub-02_task-rest_bold.tsv" in summary
    assert "1 phenotype row without a file: '05'" in summary
    assert ds["subject_id"] == ["01", "03"] and ds["age"] == [1.0, 3.0]  # '02' not silently its last row
    with pytest.raises(ValueError, match="expected a phenotype row for every file, a file for every row and "
                                         "unique ids, got: .*1 duplicate id"):
        import_timeseries_folder(folder, table, subject_column="participant_id", unmatched="error")


def test_unmatched_rows_alone_are_reported(tmp_path):
    folder = write_series(tmp_path / "raw", ["sub-01_bold.tsv"])
    table = pd.DataFrame({"subject_id": ["01", "02"]})
    with pytest.warns(RuntimeWarning, match=r"1 phenotype row without a file: '02'"):
        import_timeseries_folder(folder, table)
    with pytest.raises(ValueError, match=r"1 phenotype row without a file: '02'"):
        import_timeseries_folder(folder, table, unmatched="error")


def test_columns_and_identity_errors(tmp_path):
    folder = write_series(tmp_path / "raw", ["sub-01_bold.tsv", "sub-02_bold.tsv"])
    table = pd.DataFrame({"participant_id": ["01", "02"], "Sex": ["F", "M"]})
    ds = import_quiet(folder, table, id_column="participant_id")  # the old name still works
    assert ds["subject_id"] == ["01", "02"] and ds["Sex"] == ["F", "M"]
    with pytest.raises(ValueError, match=r"expected subject column 'Participant_ID' in the phenotype table, got none; "
                                         r"close matches: \['participant_id'\]"):
        import_timeseries_folder(folder, table, subject_column="Participant_ID")
    with pytest.raises(ValueError, match=r"expected phenotype column 'sex' .*close matches: \['Sex'\]"):
        import_timeseries_folder(folder, table, phenotype_columns=["sex"])
    with pytest.raises(ValueError, match="expected a subject column in the phenotype table"):
        import_timeseries_folder(folder, table.rename(columns={"participant_id": "pid"}))
    with pytest.raises(ValueError, match="expected one subject column"):
        import_timeseries_folder(folder, table, subject_column="participant_id", id_column="pid")
    np.save(folder / "sub-01_bold.npy", RNG.standard_normal((24, 4)))
    with pytest.raises(ValueError, match=r"expected one file per scan, got .*sub-01_bold\.npy and .*sub-01_bold\.tsv"):
        import_timeseries_folder(folder, table, subject_column="participant_id")


def test_non_bids_names_and_subject_pattern(tmp_path):
    folder = write_series(tmp_path / "raw", ["A01_roi.tsv", "A02_roi.tsv", "ROISignals_0051456.tsv"])
    table = pd.DataFrame({"subject_id": ["A01", "A02", "51456"], "dx": ["x", "y", "z"]})
    with pytest.warns(RuntimeWarning, match="ROISignals_0051456"):
        ds = import_timeseries_folder(folder, table)
    assert ds["subject_id"] == ["A01", "A02"] and ds["scan_id"] == ["A01_roi", "A02_roi"]
    ds = import_quiet(folder, table, subject_pattern=r"^(?:ROISignals_)?(?P<subject>[A-Z]?\d+)")
    assert sorted(ds["subject_id"]) == ["51456", "A01", "A02"]


def test_identity_kept_through_windows_splits_and_publishing(tmp_path):
    names = [f"sub-{s:02d}_ses-{v}_task-rest_bold.tsv" for s in range(1, 7) for v in (1, 2)]
    folder = write_series(tmp_path / "raw", names, t=30)
    table = pd.DataFrame({"subject_id": [f"{s:02d}" for s in range(1, 7)], "dx": ["a", "b"] * 3})
    ds = import_quiet(folder, table)
    windows = expand_windows(ds, 10)
    assert len(windows) == 36 and windows["scan_id"][:3] == ["ses-1_task-rest"] * 3
    assert windows["subject_id"][:6] == ["01"] * 6
    splits = grouped_split(windows, 0.34, 0.0, seed=3)
    publish_dataset(splits, tmp_path / "pub")
    loaded = load_published(tmp_path / "pub", cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == set(splits)
    for name in splits:  # published splits kept as given, identity intact
        assert loaded[name]["subject_id"] == splits[name]["subject_id"]
        assert loaded[name]["scan_id"] == splits[name]["scan_id"]
        assert loaded[name]["window_length"] == splits[name]["window_length"]


def load_build_dataset():
    spec = importlib.util.spec_from_file_location("build_dataset", ROOT / "processing" / "build_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_dataset_per_scan_table_windows_and_split_column(tmp_path, capsys):
    names = [f"sub-{s:02d}_task-motor_run-{r}_bold.tsv" for s in range(1, 5) for r in (1, 2)]
    folder = write_series(tmp_path / "raw", names, t=25)
    write_series(folder, ["sub-04_task-motor_run-3_bold.tsv"], t=6)  # shorter than a window
    pd.DataFrame({"subject": [f"{s:02d}" for s in range(1, 5) for _ in (1, 2)] + ["04"],
                  "run": ["1", "2"] * 4 + ["3"], "direction": ["up", "down"] * 4 + ["up"],
                  "split": ["train"] * 4 + ["validation"] * 2 + ["test"] * 3}).to_csv(folder / "scans.csv",
                                                                                      index=False)
    build = load_build_dataset()
    out = tmp_path / "built"
    with pytest.warns(RuntimeWarning, match=r"1 of 9 series are shorter than the window \(10 TRs\), dropped "
                                            r"\(short_series='drop'\): 04/task-motor_run-3 \(6 TRs\)"):
        assert build.main([str(folder), "--phenotypes", str(folder / "scans.csv"), "--subject-column", "subject",
                           "--scan-column", "run", "--unmatched", "error", "--window-size", "10",
                           "--short-series", "drop", "--output", str(out)]) == 0
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train", "validation", "test"]
    assert set(loaded["train"]["subject_id"]) == {"01", "02"} and set(loaded["test"]["subject_id"]) == {"04"}
    assert set(loaded["test"]["scan_id"]) == {"task-motor_run-1", "task-motor_run-2"}  # run 3 dropped
    assert "split" not in loaded["train"].column_names and len(loaded["train"]) == 4 * 2  # 25 TRs: 2 windows of 10
    with pytest.raises(SystemExit):
        build.main([str(folder), "--phenotypes", str(folder / "scans.csv"), "--subject-column", "subject",
                    "--scan-column", "run", "--test-size", "0.3", "--output", str(tmp_path / "other")])
    assert "splits used as given" in capsys.readouterr().err
