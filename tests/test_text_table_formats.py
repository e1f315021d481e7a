"""Delimiters, decimal commas, header rows and .xlsx tables (issue 19, items 2 and 4): the numbers read against the
numpy float64 arrays written, the ROI labels against the header, and ambiguous files refused, never guessed."""

import sys

import numpy as np
import pytest

from lcm_hf.errors_lcm import LcmInputError
from lcm_hf.text_tables_lcm import TextFormat, detect_text_format, read_text_table

T, N = 12, 4
CODES = ["2001", "2002", "2101", "2102"]
NAMES = ["Precentral_L", "Precentral_R", "Frontal_Sup_L", "Frontal_Sup_R"]


def reference(seed=0, integers=False):
    rng = np.random.default_rng(seed)
    if integers:
        return rng.integers(-50, 3000, size=(T, N)).astype(np.float64)
    return rng.standard_normal((T, N)) * np.array([1.0, 1e-3, 1e3, 1e-7])  # exponents too (1e-07 ...)


def text(array, sep, decimal_comma=False, header=None, integers=False):
    def cell(value):
        written = str(int(value)) if integers else repr(float(value))
        return written.replace(".", ",") if decimal_comma else written

    lines = [sep.join(header)] if header is not None else []
    return "\n".join(lines + [sep.join(cell(v) for v in row) for row in array]) + "\n"


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    return path


# -------------------------------------------------------------------------------------------- delimiters, decimals
LAYOUTS = [  # file name, delimiter, decimal comma, header, detected format
    ("comma.csv", ",", False, NAMES, TextFormat(",", False)),
    ("semicolon.csv", ";", False, NAMES, TextFormat(";", False)),
    ("semicolon_decimal_comma.csv", ";", True, NAMES, TextFormat(";", True)),
    ("semicolon_decimal_comma_no_header.txt", ";", True, None, TextFormat(";", True)),
    ("tab.txt", "\t", False, None, TextFormat("\t", False)),
    ("tab_decimal_comma.txt", "\t", True, NAMES, TextFormat("\t", True)),
    ("tab_named.csv", "\t", False, NAMES, TextFormat("\t", False)),
    ("whitespace.csv", "  ", False, None, TextFormat(None, False)),
    ("whitespace_decimal_comma.1D", " ", True, None, TextFormat(None, True)),
    ("comma.tsv", ",", False, None, TextFormat(",", False)),
]


@pytest.mark.parametrize("name, sep, decimal_comma, header, fmt", LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
def test_delimiters_and_decimal_marks_read_the_numbers_written(tmp_path, name, sep, decimal_comma, header, fmt):
    array = reference(len(name))
    path = write(tmp_path, name, text(array, sep, decimal_comma, header))
    lines = [line for line in path.read_text().splitlines() if line]
    assert detect_text_format(lines) == fmt
    data, labels = read_text_table(path)
    assert data.dtype == np.float64 and data.shape == (T, N)
    np.testing.assert_array_equal(data, array)  # repr round-trips: exact
    assert labels == header


def test_a_comma_file_that_is_also_a_decimal_comma_file_is_refused(tmp_path):
    one_column = write(tmp_path, "vector.csv", "".join(f"0,{k}5\n" for k in range(6)))
    with pytest.raises(LcmInputError, match=r"expected one way to read .*vector\.csv, got two: comma-delimited with "
                                            r"decimal points \(2 columns\) or whitespace-delimited with decimal commas "
                                            r"\(1 column\); write it with '\.' decimals"):
        read_text_table(one_column)
    pairs = write(tmp_path, "pairs.csv", "1,2\n3,4\n5,6\n")
    with pytest.raises(LcmInputError, match="expected one way to read"):
        read_text_table(pairs)
    # the same numbers with tabs are one reading (whole numbers: the first row might be ROI codes, say which)
    np.testing.assert_array_equal(read_text_table(write(tmp_path, "pairs.tsv", "1\t2\n3\t4\n5\t6\n"), header="no")[0],
                                  [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def test_a_header_settles_two_readings(tmp_path):
    """Two integer columns under a header of two names: the comma reading is the one whose header fits."""
    data, labels = read_text_table(write(tmp_path, "named_pairs.csv", "a,b\n1,2\n3,4\n"))
    np.testing.assert_array_equal(data, [[1.0, 2.0], [3.0, 4.0]])
    assert labels == ["a", "b"]


def test_mixed_decimal_marks_and_damaged_files_name_the_line(tmp_path):
    mixed = write(tmp_path, "mixed.csv", "0,5;1,5\n0.7;1,1\n")
    with pytest.raises(LcmInputError, match=r"expected numbers on line \d of .*mixed\.csv"):
        read_text_table(mixed)
    workbook = tmp_path / "sheet.csv"
    workbook.write_bytes(b"PK\x03\x04\x14\x00rest of a zip")
    with pytest.raises(LcmInputError, match=r"expected a text table in .*sheet\.csv, got a zip file \(an Excel"):
        read_text_table(workbook)


def test_single_column_and_bom(tmp_path):
    column = np.array([[0.25], [-1.5], [3.0]])
    np.testing.assert_array_equal(read_text_table(write(tmp_path, "one.txt", "0.25\n-1.5\n3.0\n"))[0], column)
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffa;b\n0,5;1,25\n".encode())
    data, labels = read_text_table(path)
    np.testing.assert_array_equal(data, [[0.5, 1.25]])
    assert labels == ["a", "b"]


# ---------------------------------------------------------------------------------------------------- header rows
@pytest.mark.parametrize("sep, suffix", [("\t", ".tsv"), (",", ".csv"), (" ", ".txt"), (";", ".csv")])
def test_a_header_row_of_roi_codes_is_never_a_time_point(tmp_path, sep, suffix):
    array = reference(3)
    data, labels = read_text_table(write(tmp_path, f"codes{suffix}", text(array, sep, header=CODES)))
    np.testing.assert_array_equal(data, array)
    assert labels == CODES


def test_codes_with_a_label_column_and_a_pandas_index(tmp_path):
    import pandas as pd

    array = reference(4)
    labelled = "ROI," + ",".join(CODES) + "\n" + "".join(f"TR{t},{','.join(map(repr, row))}\n"
                                                         for t, row in enumerate(array.tolist()))
    data, labels = read_text_table(write(tmp_path, "labelled.csv", labelled))
    np.testing.assert_array_equal(data, array)
    assert labels == CODES
    for columns in ([int(c) for c in CODES], NAMES):  # DataFrame.to_csv: ",2001,2002,..." / ",Precentral_L,..."
        path = tmp_path / "frame.csv"
        pd.DataFrame(array, columns=columns).to_csv(path)
        data, labels = read_text_table(path)
        np.testing.assert_allclose(data, array, rtol=1e-15)
        assert labels == [str(c) for c in columns]


def test_codes_above_whole_numbers_are_refused_unless_told(tmp_path):
    array = reference(5, integers=True)
    path = write(tmp_path, "integers.tsv", text(array, "\t", header=CODES, integers=True))
    with pytest.raises(LcmInputError, match=r"expected a header row or data on line 1 of .*integers\.tsv, got 2001 "
                                            r"2002 2101 \.\.\.: ROI codes or the first time point .*--header yes"):
        read_text_table(path)
    data, labels = read_text_table(path, header="yes")
    np.testing.assert_array_equal(data, array)
    assert labels == CODES
    data, labels = read_text_table(path, header="no")
    np.testing.assert_array_equal(data, np.vstack([np.asarray(CODES, dtype=np.float64), array]))
    assert labels is None


def test_rows_that_are_not_codes_stay_data(tmp_path):
    array = reference(6)
    repeated = [["1", "1", "2", "3"]]  # not all distinct
    negative = [["-1", "2", "3", "4"]]  # a sign: not a code
    single = [["7"]]
    for first in (repeated, negative):
        data, labels = read_text_table(write(tmp_path, "rows.tsv", text(np.vstack([np.asarray(first, float), array]),
                                                                         "\t")))
        np.testing.assert_array_equal(data, np.vstack([np.asarray(first, dtype=np.float64), array]))
        assert labels is None
    data, _ = read_text_table(write(tmp_path, "column.txt", "7\n" + "".join(f"{float(v)!r}\n" for v in array[:, 0])))
    np.testing.assert_array_equal(data[:, 0], np.concatenate([[7.0], array[:, 0]]))
    assert single  # a one-column file never has a code header


def test_header_no_refuses_names_and_header_yes_takes_the_first_row(tmp_path):
    array = reference(7)
    named = write(tmp_path, "named.tsv", text(array, "\t", header=NAMES))
    with pytest.raises(LcmInputError, match=r"expected numbers on line 1 of .*named\.tsv \(header='no' / --header no"):
        read_text_table(named, header="no")
    assert read_text_table(named, header="yes")[1] == NAMES
    abide = write(tmp_path, "rois_aal.1D", "#" + "\t#".join(CODES) + "\n" + text(array, "\t"))
    data, labels = read_text_table(abide, header="no")  # '#' lines are headers whatever --header says
    np.testing.assert_array_equal(data, array)
    assert labels == CODES
    with pytest.raises(LcmInputError, match="expected header 'auto', 'yes' or 'no', got 'maybe'"):
        read_text_table(named, header="maybe")


def test_a_header_that_names_other_columns_is_refused(tmp_path):
    path = write(tmp_path, "wide.tsv", text(reference(8), "\t", header=[*NAMES, "extra"]))
    with pytest.raises(LcmInputError, match=r"expected one ROI label per column in the header row \(line 1\) of "
                                            r".*wide\.tsv, got 5 labels for 4 columns"):
        read_text_table(path)


def test_the_header_rule_is_the_same_at_import_and_at_prediction(tmp_path):
    """The dataset stores what `lcm-hf predict` / the pipeline read from the same file (one reader, one rule)."""
    from lcm_hf.data import import_timeseries_folder
    from lcm_hf.pipeline_lcm import read_input

    folder = tmp_path / "codes"
    folder.mkdir()
    arrays = {}
    for s in range(2):
        arrays[s] = reference(10 + s)
        write(folder, f"sub-0{s + 1}_bold.tsv", text(arrays[s], "\t", header=CODES))
    dataset = import_timeseries_folder(folder)
    assert len(dataset) == 2
    for row, path in zip(dataset, sorted(folder.iterdir())):
        item = read_input(path)
        np.testing.assert_array_equal(np.asarray(row["timeseries"], dtype=np.float32), item["timeseries"])
        assert row["roi_labels"] == item["roi_labels"] == CODES


def test_mixed_header_styles_in_one_folder_are_refused(tmp_path):
    from lcm_hf.data import import_timeseries_folder

    folder = tmp_path / "mixed"
    folder.mkdir()
    write(folder, "sub-01_bold.tsv", text(reference(1), "\t", header=NAMES))
    write(folder, "sub-02_bold.tsv", text(reference(2), "\t"))
    with pytest.raises(LcmInputError, match=r"expected a header row of ROI labels in every file or in none, got one "
                                            r"in .*sub-01_bold\.tsv and none in .*sub-02_bold\.tsv"):
        import_timeseries_folder(folder)


# ------------------------------------------------------------------------------------------------ phenotype tables
PHENOTYPES = {  # file name -> text; each reads as participant_id, sex, age = 30.5, 41.25, 27
    "comma.csv": "participant_id,sex,age\nsub-01,F,30.5\nsub-02,M,41.25\nsub-03,F,27\n",
    "semicolon_decimal_comma.csv": "participant_id;sex;age\nsub-01;F;30,5\nsub-02;M;41,25\nsub-03;F;27\n",
    "tab_decimal_comma.txt": "participant_id\tsex\tage\nsub-01\tF\t30,5\nsub-02\tM\t41,25\nsub-03\tF\t27\n",
    "tab.csv": "participant_id\tsex\tage\nsub-01\tF\t30.5\nsub-02\tM\t41.25\nsub-03\tF\t27\n",
    "whitespace.txt": "participant_id  sex  age\nsub-01  F  30.5\nsub-02  M  41.25\nsub-03  F  27\n",
    "quoted.csv": '"participant_id","sex","age"\n"sub-01","F",30.5\n"sub-02","M",41.25\n"sub-03","F",27\n',
}


@pytest.mark.parametrize("name", sorted(PHENOTYPES))
def test_phenotype_tables_of_every_delimiter(tmp_path, name):
    from lcm_hf.data import read_phenotypes

    table = read_phenotypes(write(tmp_path, name, PHENOTYPES[name]), id_column="participant_id")
    assert list(table.columns) == ["participant_id", "sex", "age"]
    assert table["participant_id"].tolist() == ["sub-01", "sub-02", "sub-03"]
    np.testing.assert_array_equal(table["age"].to_numpy(dtype=np.float64), [30.5, 41.25, 27.0])


def test_phenotype_tables_refused_by_name(tmp_path):
    from lcm_hf.data import read_phenotypes

    cases = {
        "quoted_decimal_comma.csv": ('participant_id,age\nsub-01,"30,5"\nsub-02,"41,25"\n',
                                     r"expected decimal points in the comma-delimited .* column 'age' \('30,5'\)"),
        "two.csv": ("participant_id;sex,age\nsub-01;F,30\nsub-02;M,41\n",
                    r"expected one delimiter in .*two\.csv, got two .*semicolon \(2 columns\) and comma \(2 columns\)"),
        "marks.csv": ("participant_id;age;height\nsub-01;30,5;1.72\nsub-02;41;1.80\n",
                      r"expected one decimal mark .* decimal commas in column 'age' \('30,5'\) and decimal points in "
                      r"column 'height' \(1\.72\)"),
    }
    for name, (content, message) in cases.items():
        with pytest.raises(LcmInputError, match=message):
            read_phenotypes(write(tmp_path, name, content), id_column="participant_id")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    with pytest.raises(LcmInputError, match=r"got an old Excel \(\.xls\) workbook .*old\.xls: save it as \.xlsx"):
        read_phenotypes(tmp_path / "old.xls")


def test_xlsx_phenotypes_through_openpyxl(tmp_path):
    pytest.importorskip("openpyxl")
    import pandas as pd

    from lcm_hf.data import read_phenotypes

    path = tmp_path / "phenotypes.xlsx"
    pd.DataFrame({"participant_id": ["007", "sub-02"], "sex": ["F", "M"], "age": [30.5, 41.25]}).to_excel(
        path, index=False)
    table = read_phenotypes(path, id_column="participant_id")
    assert table["participant_id"].tolist() == ["007", "sub-02"]  # ids as strings, zeros kept
    np.testing.assert_array_equal(table["age"].to_numpy(dtype=np.float64), [30.5, 41.25])


def test_xlsx_without_openpyxl_names_the_extra(tmp_path, monkeypatch):
    from lcm_hf.data import read_phenotypes

    path = tmp_path / "phenotypes.xlsx"
    path.write_bytes(b"PK\x03\x04 a workbook")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # `import openpyxl` raises ImportError
    with pytest.raises(LcmInputError, match=r'^expected openpyxl to read the Excel phenotype table .*phenotypes\.xlsx: '
                                            r'pip install "lcm-hf\[xlsx\]" \(or save the sheet as CSV\)$'):
        read_phenotypes(path)


def test_the_xlsx_extra_is_declared():
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert any(req.startswith("openpyxl") for req in project["optional-dependencies"]["xlsx"])


def test_any_array_in_any_layout_reads_back_exactly(tmp_path):
    """Random (T, N) float64 arrays (any magnitude, signs, exponents) written in every accepted layout read back
    bit for bit, or are refused as ambiguous: never read as other numbers."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    layouts = st.sampled_from([(",", False), (";", False), (";", True), ("\t", False), ("\t", True), (" ", False),
                               (" ", True)])
    floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)

    @settings(max_examples=60, deadline=None)
    @given(arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(2, 5)), elements=floats), layouts,
           st.booleans())
    def check(array, layout, named):
        sep, decimal_comma = layout
        header = [f"r{i}" for i in range(array.shape[1])] if named else None
        path = write(tmp_path, "random.txt", text(array, sep, decimal_comma, header))
        try:
            data, labels = read_text_table(path, header="yes" if named else "no")
        except LcmInputError as error:  # two readings give different numbers: refused, naming both
            assert "expected one way to read" in str(error)
            return
        np.testing.assert_array_equal(data, array)
        assert labels == header

    check()


def test_the_pipeline_takes_the_header_rule_of_the_command_line(tmp_path):
    """``header=`` reaches the pipeline's file reader, as ``--header`` reaches `lcm-hf predict`: codes above whole
    numbers, refused under "auto", are labels with "yes" and a first time point with "no"."""
    import torch
    from transformers import pipeline

    from lcm_hf import LcmForBeiPrediction, LcmProcessor
    from lcm_testing import TINY_BEIS, make_tiny_config

    torch.manual_seed(0)
    folder = tmp_path / "model"
    LcmForBeiPrediction(make_tiny_config(num_rois=len(CODES))).save_pretrained(folder)
    LcmProcessor(vocabulary=TINY_BEIS, num_rois=len(CODES), window_size=20, window_stride=20).save_pretrained(folder)
    array = np.random.default_rng(4).integers(-9, 9, size=(39, len(CODES)))
    path = write(tmp_path, "integers.tsv", text(array, "\t", header=CODES, integers=True))
    predict = pipeline("phenotype-prediction", model=str(folder), device="cpu")
    with pytest.raises(LcmInputError, match=r"ROI codes or the first time point"):
        predict(str(path))
    as_labels = predict(str(path), header="yes", return_windows=True)
    as_data = predict(str(path), header="no", return_windows=True)
    assert len(as_labels["sex"]["windows"]) == 1 and len(as_data["sex"]["windows"]) == 2  # 39 vs 40 time points
