"""A table of bad or unusual inputs, run as a user runs the commands, each with its expected outcome.

Every case is a real input: files this module writes, passed on a command line to `processing/build_dataset.py`,
`training/pretrain.py`, `training/finetune.py` or `lcm-hf predict` / `lcm-hf embed`. Expected: a clear refusal
(exit status 2, one line `error: ...` naming the culprit and the fix), a warning (`warning: ...`, exit 0), or the right
result (checked against an independent reference: numpy float64 correlations, the files as written). The cheap cases
run in one subprocess per module (`console_cases.run_cases`: the imports are paid once); the cases that train are
marked slow.

Areas (issue 19): the edge-table import (`--format edges`), values checked at build time (class spellings, integer
"classes"), censored (scrubbed) volumes in every spelling, outputs that never overwrite inputs, counts refused by
flag, stale temporary folders of killed writes, and the misleading messages made one line naming the culprit.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from console_cases import run_cases
from own_data import NUM_ROIS, ROOT, write_cohort

N = 5  # ROIs of the edge tables
LABELS = [f"R{i}" for i in range(N)]
HAVE_OPENPYXL = importlib.util.find_spec("openpyxl") is not None
DEAD_PID = 4194000  # above the usual pid_max (4194304 is the kernel's limit): checked dead in the fixture


def correlations(subjects, n=N, seed=0):
    """(S, N, N) float64 Pearson matrices of random series: the reference the imported FC is compared to."""
    rng = np.random.default_rng(seed)
    return np.stack([np.corrcoef(rng.standard_normal((60, n)).T) for _ in range(subjects)])


def edge_names(style, labels=LABELS, prefix=""):
    n = len(labels)
    diagonal = style == "diag"
    rows, cols = np.triu_indices(n, k=0 if diagonal else 1)
    if style in ("index", "prefix_index"):
        return [f"{prefix or 'e'}{k}" for k in range(len(rows))]
    if style == "index1":
        return [f"e{k + 1}" for k in range(len(rows))]
    separator = {"dash": "-", "underscores": "__"}.get(style, ".")
    return [f"{prefix}{labels[i]}{separator}{labels[j]}" for i, j in zip(rows, cols)]


def write_edge_table(path, style="dot", subjects=6, phenotypes=None, labels=LABELS, prefix="", fisher=False,
                     seed=0, subject_column="participant_id", edit=None, sep=None, decimal="."):
    """One table, a row per subject: subject column, phenotypes, then the upper-triangle edges. Returns the (S, N, N)
    float64 matrices it holds (Fisher z when `fisher`)."""
    import pandas as pd

    fc = correlations(subjects, len(labels), seed)
    if fisher:
        fc = np.arctanh(np.clip(fc, -0.999999, 0.999999))
        for matrix in fc:
            np.fill_diagonal(matrix, 0.0)
    diagonal = style == "diag"
    rows, cols = np.triu_indices(len(labels), k=0 if diagonal else 1)
    table = {subject_column: [f"sub-{s + 1:02d}" for s in range(subjects)]}
    default = {"sex": ["F", "M"] * (subjects // 2) + ["F"] * (subjects % 2), "age": [20 + s for s in range(subjects)]}
    table.update(default if phenotypes is None else phenotypes)
    for name, i, j in zip(edge_names(style, labels, prefix), rows, cols):
        table[name] = fc[:, i, j]
    frame = pd.DataFrame(table)
    if edit is not None:
        frame = edit(frame)
    if str(path).endswith(".xlsx"):
        frame.to_excel(path, index=False)
        return fc
    sep = sep or ("\t" if str(path).endswith((".tsv", ".txt")) else ",")
    frame.to_csv(path, sep=sep, index=False, decimal=decimal)
    return fc


SERIES_T = 30
CODES = [str(2001 + 10 * i) for i in range(NUM_ROIS)]  # AAL-like ROI codes


def series_reference(seed, integers=False):
    """A (SERIES_T, NUM_ROIS) float64 series: the reference an import is compared to."""
    rng = np.random.default_rng(seed)
    if integers:
        return rng.integers(100, 2000, size=(SERIES_T, NUM_ROIS)).astype(np.float64)
    return rng.standard_normal((SERIES_T, NUM_ROIS)) * 10 + 100


def render(array, sep, decimal_comma=False, header=None, integers=False):
    """The text of a table of numbers: `repr` floats (exact), decimal commas, an optional header row."""
    def cell(value):
        text = str(int(value)) if integers else repr(float(value))
        return text.replace(".", ",") if decimal_comma else text

    lines = [sep.join(map(str, header))] if header is not None else []
    return "\n".join(lines + [sep.join(cell(v) for v in row) for row in array]) + "\n"


def write_series_folder(folder, text, suffix=".csv", subjects=3, seed=30, integers=False, table=None):
    """`sub-XX_task-rest_bold<suffix>` files holding `text(array, s)` and a participants.tsv (or `table`: name ->
    text); returns {subject: (T, N) float64}."""
    folder.mkdir()
    refs = {}
    for s in range(subjects):
        array = series_reference(seed + s, integers)
        (folder / f"sub-{s + 1:02d}_task-rest_bold{suffix}").write_text(text(array, s))
        refs[f"sub-{s + 1:02d}"] = array
    name, content = table or ("participants.tsv", "participant_id\tsex\n" + "".join(
        f"sub-{s + 1:02d}\t{'FM'[s % 2]}\n" for s in range(subjects)))
    (folder / name).write_text(content)
    return refs


def write_format_files(base, files, refs):
    """The delimiter, decimal-comma, xlsx and header inputs of issue 19 (items 2 and 4)."""
    names = [f"roi_{i}" for i in range(NUM_ROIS)]
    folders = {
        "semicolon_csv": (lambda a, s: render(a, ";", header=names), ".csv", {}),
        "decimal_comma_semicolon": (lambda a, s: render(a, ";", True, header=names), ".csv", {}),
        "decimal_comma_tab_txt": (lambda a, s: render(a, "\t", True), ".txt", {}),
        "whitespace_csv": (lambda a, s: render(a, "   "), ".csv", {}),
        "tab_csv": (lambda a, s: render(a, "\t", header=names), ".csv", {}),
        "code_header": (lambda a, s: render(a, "\t", header=CODES), ".tsv", {}),
        "code_header_label_column": (lambda a, s: "ROI," + ",".join(CODES) + "\n" + "".join(
            f"TR{t},{','.join(map(repr, row))}\n" for t, row in enumerate(a.tolist())), ".csv", {}),
        "pandas_index": (lambda a, s: __import__("pandas").DataFrame(a, columns=[int(c) for c in CODES]).to_csv(),
                         ".csv", {}),
        "code_header_integers": (lambda a, s: render(a, "\t", header=CODES, integers=True), ".tsv",
                                 {"integers": True}),
        "mixed_headers": (lambda a, s: render(a, "\t", header=names if s != 1 else None), ".tsv", {}),
        "header_too_wide": (lambda a, s: render(a, "\t", header=[*names, "extra"]), ".tsv", {}),
        "decimal_comma_one_column": (lambda a, s: "".join(f"{repr(float(v)).replace('.', ',')}\n" for v in a[:, 0]),
                                     ".csv", {}),
        "phenotypes_semicolon": (lambda a, s: render(a, "\t", header=names), ".tsv", {"table": (
            "participants.csv", "participant_id;sex;age\nsub-01;F;30,5\nsub-02;M;41,25\nsub-03;F;27\n")}),
        "phenotypes_two_delimiters": (lambda a, s: render(a, "\t", header=names), ".tsv", {"table": (
            "participants.csv", "participant_id;sex,age\nsub-01;F,30\nsub-02;M,41\nsub-03;F,27\n")}),
        "phenotypes_mixed_decimals": (lambda a, s: render(a, "\t", header=names), ".tsv", {"table": (
            "participants.csv", "participant_id;age;height\nsub-01;30,5;1.72\nsub-02;41;1.80\nsub-03;27;1.65\n")}),
    }
    for name, (text, suffix, options) in folders.items():
        refs[name] = write_series_folder(base / name, text, suffix, **options)
        files[name] = str(base / name)
    (base / "fmriprep").mkdir()  # fMRIPrep derivatives: the confounds table beside each series
    for s in range(2):
        np.savetxt(base / "fmriprep" / f"sub-{s + 1:02d}_task-rest_desc-aal_timeseries.tsv", series_reference(40 + s),
                   delimiter="\t", header="\t".join(names), comments="")
        (base / "fmriprep" / f"sub-{s + 1:02d}_task-rest_desc-confounds_timeseries.tsv").write_text(
            "global_signal\tcsf\tframewise_displacement\n1.0\t2.0\tn/a\n" + "1.1\t2.2\t0.1\n" * 29)
    files["fmriprep"] = str(base / "fmriprep")
    (base / "phenotypes_xlsx").mkdir()  # an Excel phenotype table beside tab series
    files["phenotypes_xlsx"] = str(base / "phenotypes_xlsx")
    for s in range(3):
        np.savetxt(base / "phenotypes_xlsx" / f"sub-{s + 1:02d}_task-rest_bold.tsv", series_reference(50 + s),
                   delimiter="\t", header="\t".join(names), comments="")
    if HAVE_OPENPYXL:
        import pandas as pd

        pd.DataFrame({"participant_id": ["sub-01", "sub-02", "sub-03"], "sex": ["F", "M", "F"],
                      "age": [30.5, 41.25, 27.0]}).to_excel(base / "phenotypes_xlsx" / "phenotypes.xlsx", index=False)
        refs["edges_xlsx"] = write_edge_table(base / "edges_sheet.xlsx", seed=17)
    else:
        (base / "phenotypes_xlsx" / "phenotypes.xlsx").write_bytes(b"PK\x03\x04 a workbook needs openpyxl")
        (base / "edges_sheet.xlsx").write_bytes(b"PK\x03\x04 a workbook needs openpyxl")
    files["edges_sheet"] = str(base / "edges_sheet.xlsx")
    refs["edges_decimal_comma"] = write_edge_table(base / "edges_decimal_comma.csv", sep=";", decimal=",", seed=18)
    files["edges_decimal_comma"] = str(base / "edges_decimal_comma.csv")
    files["code_file"] = str(base / "code_header_integers" / "sub-01_task-rest_bold.tsv")


CENSORED_TRS = [3, 4, 20]  # the censored volumes of sub-02 in the censored_* folders


def censored_series(seed=5):
    """(30, NUM_ROIS) float64 with NaN rows at CENSORED_TRS: sub-02's series in the censored_* folders."""
    x = np.random.default_rng(seed).standard_normal((30, NUM_ROIS)) + 100.0
    x[CENSORED_TRS] = np.nan
    return x


def write_censored_cohort(folder, cell=None, suffix=".tsv", edit=None):
    """A 4-subject cohort whose sub-02 file holds censored volumes: written by pandas (`cell` None: empty cells),
    with NaN spelled `cell`, or as .npy; `edit` changes the array first."""
    import pandas as pd

    write_cohort(folder, n_subjects=4, runs=1, n_timepoints=30)
    os.remove(os.path.join(folder, "sub-02_task-rest_run-1_bold.tsv"))
    x = censored_series() if edit is None else edit(censored_series())
    target = os.path.join(folder, f"sub-02_task-rest_run-1_bold{suffix}")
    if suffix == ".npy":  # every file .npy: a folder mixing files with and without header labels is refused
        for name in os.listdir(folder):
            if name.endswith("_bold.tsv"):
                path = os.path.join(folder, name)
                np.save(path[:-4] + ".npy", np.loadtxt(path, delimiter="\t", skiprows=1))
                os.remove(path)
        np.save(target, x)
        return
    frame = pd.DataFrame(x, columns=[f"roi_{i}" for i in range(NUM_ROIS)])
    frame.to_csv(target, sep="," if suffix == ".csv" else "\t", index=False, na_rep="" if cell is None else cell)


def load(folder):
    """The published train split."""
    from lcm_hf.data import load_published

    return load_published(folder)["train"]


def output(world, case_id):
    """The output folder of a case (`out` in its argv)."""
    return os.path.join(world["base"], "cases", case_id, f"out_{case_id}")


# ---------------------------------------------------------------------------------------------------- the files
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Every input file of the table, and the one-subprocess run of all cheap cases."""
    base = tmp_path_factory.mktemp("bad_inputs")
    with pytest.raises(ProcessLookupError):
        os.kill(DEAD_PID, 0)
    files = {"base": str(base)}

    def path(name):
        files[name.split(".")[0].replace("/", "_")] = str(base / name)
        return base / name

    refs = {}
    refs["dot"] = write_edge_table(path("edges_dot.csv"))
    refs["dash"] = write_edge_table(path("edges_dash.tsv"), "dash", seed=1)
    refs["underscores"] = write_edge_table(path("edges_underscores.csv"), "underscores", seed=2)
    refs["index"] = write_edge_table(path("edges_index.csv"), "index", seed=3)
    refs["index1"] = write_edge_table(path("edges_index1.csv"), "index1", seed=4)
    refs["prefix_index"] = write_edge_table(path("edges_prefix_index.csv"), "prefix_index", prefix="fc_", seed=5)
    refs["prefix_pair"] = write_edge_table(path("edges_prefix_pair.csv"), "dot", prefix="fc_", seed=6)
    refs["diag"] = write_edge_table(path("edges_diag.csv"), "diag", seed=7)
    refs["fisher"] = write_edge_table(path("edges_fisher.csv"), fisher=True, seed=8)
    refs["txt"] = write_edge_table(path("edges_txt.txt"), seed=9)
    refs["dashed_labels"] = write_edge_table(path("edges_dashed_labels.csv"), labels=["ctx-lh-a", "ctx-lh-b", "R-1", "x"],
                                             seed=10)
    refs["site"] = write_edge_table(path("edges_site.csv"), phenotypes={"site": ["A", "B"] * 3, "sex": ["F", "M"] * 3},
                                    seed=11)
    refs["dotted_phenotype"] = write_edge_table(
        path("edges_dotted_phenotype.csv"), phenotypes={"age.years": [20, 21, 22, 23, 24, 25]}, seed=12)
    refs["subject"] = write_edge_table(path("edges_subject.csv"), subject_column="Subject_Code", seed=13)
    refs["variants"] = write_edge_table(path("edges_variants.csv"), phenotypes={
        "diagnosis": ["ADHD", "adhd", "Adhd", "control", "ADHD", "control"], "sex": ["F", "M"] * 3}, seed=14)
    refs["scans"] = write_edge_table(path("edges_scans.csv"), subjects=4, edit=lambda f: f.assign(
        participant_id=["sub-01", "sub-01", "sub-02", "sub-02"], run=["1", "2", "1", "2"]), seed=15)
    write_edge_table(path("edges_dup.csv"), subjects=4, edit=lambda f: f.assign(
        participant_id=["sub-01", "sub-02", "sub-02", "sub-03"]))
    write_edge_table(path("edges_k9.csv"), "index", edit=lambda f: f.drop(columns=["e9"]))
    write_edge_table(path("edges_k4_pairs.csv"), labels=["A", "B", "C"],
                     edit=lambda f: f.assign(**{"A.D": 0.1}))
    write_edge_table(path("edges_order.csv"), edit=lambda f: f[[*f.columns[:3], "R0.R2", "R0.R1",
                                                                *f.columns[5:]]])
    write_edge_table(path("edges_gap.csv"), "index", edit=lambda f: f.rename(columns={"e3": "e10"}))
    write_edge_table(path("edges_text.csv"), edit=lambda f: f.astype({"R1.R3": object}).assign(
        **{"R1.R3": ["0.1", "0.2", "abc", "0.3", "0.1", "0.2"]}))
    write_edge_table(path("edges_empty.csv"), edit=lambda f: f.assign(**{"R2.R4": [0.1, None, 0.2, 0.3, 0.1, 0.2]}))
    write_edge_table(path("edges_range.csv"), edit=lambda f: f.assign(**{"R0.R4": [0.1, 0.2, 1.7, 0.3, 0.1, 0.2]}))
    write_edge_table(path("edges_nosubject.csv"), subject_column="id")
    write_edge_table(path("edges_nosubjectvalue.csv"), edit=lambda f: f.assign(
        participant_id=["sub-01", None, "sub-03", "sub-04", "sub-05", "sub-06"]))
    write_edge_table(path("edges_header_only.csv"), edit=lambda f: f.iloc[:0])
    write_edge_table(path("edges_diag_unflagged.csv"), "diag", seed=16)
    (base / "edges_damaged.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    files["edges_damaged_xlsx"] = str(base / "edges_damaged.xlsx")
    with open(path("phenotypes_only.csv"), "w") as handle:
        handle.write("participant_id,sex,age\nsub-01,F,30\nsub-02,M,31\n")
    for name in ("only_table", "only_table_default", "table_as_phenotypes"):
        (base / name).mkdir()
        write_edge_table(base / name / "fc_edges.csv")
        files[name] = str(base / name)
    # folders of time series
    write_cohort(path("cohort"), n_subjects=4, runs=1, n_timepoints=30)
    write_cohort(path("stray"), n_subjects=4, runs=1, n_timepoints=30)
    os.replace(base / "stray" / "participants.tsv", base / "stray_participants.tsv")
    with open(base / "stray" / "participants.tsv", "w") as handle:  # a stray older copy, not the table passed
        handle.write("participant_id\tsex\nsub-01\tF\n")
    files["stray_table"] = str(base / "stray_participants.tsv")
    for name, odd in (("first_odd", ["sub-01"]), ("later_odd", ["sub-03"]), ("two_odd", ["sub-02", "sub-04"])):
        write_cohort(path(name), n_subjects=5, runs=1, n_timepoints=30)
        for subject in odd:
            series = np.random.default_rng(1).standard_normal((30, NUM_ROIS - 1))
            np.savetxt(base / name / f"{subject}_task-rest_run-1_bold.tsv", series, delimiter="\t",
                       header="\t".join(f"roi_{i}" for i in range(NUM_ROIS - 1)), comments="")
    # censored (scrubbed) volumes in sub-02's file, spelled as labs write them
    for name, cell, suffix, edit in (
            ("censored_empty_tsv", None, ".tsv", None), ("censored_empty_csv", None, ".csv", None),
            ("censored_nan", "NaN", ".tsv", None), ("censored_bids", "n/a", ".tsv", None),
            ("censored_r_na", "NA", ".csv", None), ("censored_npy", None, ".npy", None),
            ("censored_first_tr", "n/a", ".tsv", lambda x: np.where(np.arange(30)[:, None] == 0, np.nan, x)),
            ("censored_partial", "n/a", ".tsv", lambda x: np.where((np.arange(30)[:, None] == 9)
                                                                  & (np.arange(NUM_ROIS) == 2), np.nan, x)),
            ("censored_all", "", ".tsv", lambda x: np.full_like(x, np.nan))):
        write_censored_cohort(path(name), cell, suffix, edit)
    files["censored_series"] = str(base / "censored_bids" / "sub-02_task-rest_run-1_bold.tsv")
    write_cohort(path("variants_folder"), n_subjects=4, runs=1, n_timepoints=30)
    with open(base / "variants_folder" / "participants.tsv", "w") as handle:
        handle.write("participant_id\tsex\tdiagnosis\nsub-01\tF\tControl\nsub-02\tM\tcontrol\n"
                     "sub-03\tF\tpatient\nsub-04\tM\tcontrol\n")
    with open(path("a_file"), "w") as handle:
        handle.write("not a folder\n")
    (base / "not_lcm").mkdir()
    (base / "not_lcm" / "notes.txt").write_text("mine\n")
    files["not_lcm"] = str(base / "not_lcm")
    np.savetxt(path("series.tsv"), np.random.default_rng(2).standard_normal((30, NUM_ROIS)), delimiter="\t")
    np.savetxt(path("series2.tsv"), np.random.default_rng(3).standard_normal((30, NUM_ROIS)), delimiter="\t")
    (base / "existing.parquet").write_bytes(b"old")
    files["existing"] = str(base / "existing")
    # a published dataset (training input), a fake pretrained model folder, an unfinished run
    from lcm_hf.data import import_timeseries_folder, publish_dataset

    dataset = import_timeseries_folder(base / "cohort", base / "cohort" / "participants.tsv",
                                       subject_column="participant_id")
    publish_dataset(dataset, base / "dataset")
    files["dataset"] = str(base / "dataset")
    publish_dataset(dataset, base / "other_dataset")
    files["other_dataset"] = str(base / "other_dataset")
    write_cohort(base / "ages", n_subjects=12, runs=1, n_timepoints=40)
    publish_dataset(import_timeseries_folder(base / "ages", base / "ages" / "participants.tsv",
                                             subject_column="participant_id"), base / "ages_dataset")
    files["ages_dataset"] = str(base / "ages_dataset")
    (base / "pretrained").mkdir()
    (base / "pretrained" / "config.json").write_text("{}")
    files["pretrained"] = str(base / "pretrained")
    (base / "run" / "checkpoint-5").mkdir(parents=True)
    files["run"] = str(base / "run")
    (base / "empty").mkdir()
    files["empty"] = str(base / "empty")
    # stale temporary folders beside an output: one of a dead process, one of this (live) process
    (base / "stale").mkdir()
    (base / "stale" / f".out.tmp-{DEAD_PID}").mkdir()
    (base / "stale" / f".out.tmp-{DEAD_PID}" / "half.parquet").write_bytes(b"x")
    (base / "stale" / f".out.old-{DEAD_PID}").mkdir()
    (base / "stale" / f".out.tmp-{os.getpid()}").mkdir()
    files["stale"] = str(base / "stale")
    write_format_files(base, files, refs)
    for link, target in (("dataset_link", "dataset"), ("cohort_link", "cohort"), ("series_link.tsv", "series.tsv")):
        os.symlink(base / target, base / link)
        files[link.split(".")[0]] = str(base / link)

    cases = []
    for case in CASES:
        cwd = base / "cases" / case.id
        cwd.mkdir(parents=True)
        argv = [f"out_{case.id}" if a == "out" else a.format(**files) for a in case.argv]  # unique names: datasets
        cases.append({"id": case.id, "command": case.command, "argv": argv, "cwd": str(cwd),  # caches by name
                      "without": case.without})
    before = {name: open(files[name], "rb").read() for name in ("edges_dot", "series")}
    markers = {name: open(os.path.join(files[name], ".lcm_hf_output.json")).read() for name in ("dataset",)}
    results = run_cases(cases)
    return {"files": files, "refs": refs, "results": results, "base": base, "before": before, "markers": markers}


# ---------------------------------------------------------------------------------------------------- the table
class Case:
    def __init__(self, id, command, argv, rc, stderr=None, check=None, absent=None, without=()):
        self.id, self.command, self.argv, self.rc = id, command, argv, rc
        self.stderr, self.check, self.absent, self.without = stderr, check, absent, list(without)


def B(id, argv, rc=2, stderr=None, check=None, absent=None, without=()):
    return Case(id, "build_dataset", argv, rc, stderr, check, absent, without)


def P(id, argv, stderr, command="pretrain"):
    base = ["--dataset_dirs", "{dataset}", "--categorical_columns", "sex", "--output_dir", "out", "--use_cpu",
            "--report_to", "none"] if command == "pretrain" else [
        "--model_name_or_path", "{pretrained}", "--dataset_dirs", "{dataset}", "--new_beis", "diagnosis",
        "--output_dir", "out", "--use_cpu", "--report_to", "none"]
    return Case(id, command, [*base, *argv], 2, stderr)


def C(id, argv, stderr, rc=2, check=None):
    return Case(id, "lcm-hf", argv, rc, stderr, check)


EDGES = ["--format", "edges", "--output", "out"]
ONE_LINE = re.compile(r"^error: [^\n]+\n$")

CASES = [
    # --- the edge-table import: the right result (checked in test_edge_tables_import_right) -------------------
    B("edges_dot", ["{edges_dot}", *EDGES], 0),
    B("edges_dash_tsv", ["{edges_dash}", *EDGES], 0),
    B("edges_underscores", ["{edges_underscores}", *EDGES], 0),
    B("edges_index", ["{edges_index}", *EDGES], 0),
    B("edges_index_from_1", ["{edges_index1}", *EDGES], 0),
    B("edges_prefix_index", ["{edges_prefix_index}", *EDGES, "--edge-prefix", "fc_"], 0),
    B("edges_prefix_pairs", ["{edges_prefix_pair}", *EDGES, "--edge-prefix", "fc_"], 0),
    B("edges_with_diagonal", ["{edges_diag}", *EDGES, "--vector-diagonal"], 0),
    B("edges_fisher_z", ["{edges_fisher}", *EDGES, "--fc-values", "fisher_z"], 0),
    B("edges_txt_tab", ["{edges_txt}", *EDGES], 0),
    B("edges_labels_with_dashes", ["{edges_dashed_labels}", *EDGES], 0),
    B("edges_site_column", ["{edges_site}", *EDGES], 0),
    B("edges_dotted_phenotype", ["{edges_dotted_phenotype}", *EDGES], 0),
    B("edges_subject_flag", ["{edges_subject}", *EDGES, "--subject-column", "Subject_Code"], 0),
    B("edges_scan_column", ["{edges_scans}", *EDGES, "--scan-column", "run"], 0),
    B("edges_columns_subset", ["{edges_dot}", *EDGES, "--columns", "sex"], 0),
    B("edges_dataset_name", ["{edges_dot}", *EDGES, "--dataset-name", "cohort_x"], 0),
    B("edges_split", ["{edges_dot}", *EDGES, "--test-size", "0.34"], 0),
    # --- edge tables that cannot be read: one line naming the culprit ----------------------------------------
    B("edges_k_not_triangular", ["{edges_k9}", *EDGES],
      stderr=r"expected K = N\(N-1\)/2 .* got K = 9 in .*edges_k9\.csv .*nearest valid counts: 6 \(N=4\), 10 \(N=5\)"),
    B("edges_k4_pairs", ["{edges_k4_pairs}", *EDGES], stderr=r"got K = 4 .*A\.B \.\.\. A\.D.*3 \(N=3\), 6 \(N=4\)"),
    B("edges_pairs_out_of_order", ["{edges_order}", *EDGES],
      stderr=r"row-major order .*got 'R0\.R2' at edge 0 where 'R0\.R1' belongs"),
    B("edges_index_gap", ["{edges_gap}", *EDGES], stderr=r"e<index>: expected every index .* missing \['e3'"),
    B("edges_text_cell", ["{edges_text}", *EDGES], stderr=r"got 'abc' in column 'R1\.R3' at data row 3"),
    B("edges_empty_cell", ["{edges_empty}", *EDGES], stderr=r"got an empty cell in column 'R2\.R4' at data row 2"),
    B("edges_out_of_range", ["{edges_range}", *EDGES],
      stderr=r"correlations in \[-1, 1\] in .*edges_range\.csv data row 3 \(subject sub-03\).*--fc-values fisher_z"),
    B("edges_duplicate_subject", ["{edges_dup}", *EDGES],
      stderr=r"one row per subject .* 'sub-02' at data rows 2 and 3.*--scan-column"),
    B("edges_no_subject_column", ["{edges_nosubject}", *EDGES], stderr=r"expected a subject column .*--subject-column"),
    B("edges_wrong_subject_flag", ["{edges_dot}", *EDGES, "--subject-column", "participant"],
      stderr=r"expected subject column 'participant' .*close matches: \['participant_id'\]"),
    B("edges_empty_subject", ["{edges_nosubjectvalue}", *EDGES],
      stderr=r"expected a subject id in every row .* data row 2"),
    B("edges_prefix_matches_nothing", ["{edges_dot}", *EDGES, "--edge-prefix", "conn_"],
      stderr=r"--edge-prefix 'conn_': expected edge columns starting with it"),
    B("edges_no_edges", ["{phenotypes_only}", *EDGES], stderr=r"expected edge columns in .*phenotypes_only\.csv"),
    B("edges_folder_input", ["{only_table}", *EDGES], stderr=r"expected one edge table .*got the folder"),
    B("edges_missing_file", ["{base}/no_such_table.csv", *EDGES],
      stderr=r"expected an edge table \(\.csv/\.tsv\) at .*no_such_table\.csv, found none"),
    B("edges_xlsx_damaged", ["{edges_damaged_xlsx}", *EDGES],
      stderr=r"expected a readable Excel \.xlsx edge table, got .*edges_damaged\.xlsx: BadZipFile" if HAVE_OPENPYXL else
      r'expected openpyxl to read the Excel edge table .*edges_damaged\.xlsx: pip install "lcm-hf\[xlsx\]"'),
    B("edges_odd_suffix", ["{a_file}", *EDGES], stderr=r"expected an edge table ending in \['\.csv', '\.tsv', '\.txt', "
                                                      r"'\.xlsx'\], got 'a_file'"),
    B("edges_header_only", ["{edges_header_only}", *EDGES], stderr=r"expected at least one data row in .*header_only"),
    B("edges_diagonal_unflagged", ["{edges_diag_unflagged}", *EDGES],
      stderr=r"got 15 pairs with it \(R0\.R0 \.\.\. R4\.R4\) .*: pass --vector-diagonal"),
    B("edges_diagonal_flag_without_diagonal", ["{edges_dot}", *EDGES, "--vector-diagonal"],
      stderr=r"got 10 pairs without it .*: drop --vector-diagonal"),
    B("edges_columns_names_an_edge", ["{edges_dot}", *EDGES, "--columns", "R0.R1"],
      stderr=r"expected phenotype column 'R0\.R1'"),
    B("edges_missing_site_column", ["{edges_dot}", *EDGES, "--site-column", "centre"],
      stderr=r"expected site column 'centre'"),
    B("edges_missing_scan_column", ["{edges_dot}", *EDGES, "--scan-column", "session"],
      stderr=r"expected scan column 'session'"),
    B("edges_with_phenotypes", ["{edges_dot}", *EDGES, "--phenotypes", "{phenotypes_only}"],
      stderr=r"--format edges: expected no --phenotypes"),
    B("edges_with_window_size", ["{edges_dot}", *EDGES, "--window-size", "20"],
      stderr=r"--format edges: expected no --window-size"),
    B("edge_prefix_without_edges", ["{cohort}", "--output", "out", "--edge-prefix", "e"],
      stderr=r"--edge-prefix 'e': expected with --format edges, got --format folder"),
    # --- an edge table given to the folder formats points to --format edges ---------------------------------
    B("table_as_connectivity_input", ["{edges_dot}", "--format", "connectivity", "--output", "out"],
      stderr=r"edges_dot\.csv is one table with a row per subject and 10 edge columns .*: read it with --format edges"),
    B("table_as_folder_input", ["{edges_index}", "--output", "out"], stderr=r"read it with --format edges"),
    B("folder_of_one_table_connectivity", ["{only_table}", "--format", "connectivity", "--output", "out"],
      stderr=r"holds no per-scan files but the table fc_edges\.csv .*--format edges"),
    B("folder_of_one_table_default", ["{only_table_default}", "--output", "out"], stderr=r"--format edges"),
    B("folder_table_as_phenotypes", ["{table_as_phenotypes}", "--format", "connectivity", "--phenotypes",
                                     "{table_as_phenotypes}/fc_edges.csv", "--output", "out"],
      stderr=r"fc_edges\.csv .*--format edges"),
    B("series_file_as_folder", ["{series}", "--output", "out"],
      stderr=r"expected a folder of per-scan files for --format folder, got the file .*series\.tsv"),
    # --- values at build time ---------------------------------------------------------------------------------
    B("class_case_variants_edges", ["{edges_variants}", *EDGES], 0,
      stderr=r"warning: classes that differ only by case or spelling \(diagnosis: 'ADHD' ~ 'Adhd' ~ 'adhd'\).*"
             r"--class_aliases '\{\"diagnosis\": \{\"Adhd\": \"ADHD\", \"adhd\": \"ADHD\"\}\}'"),
    B("class_case_variants_folder", ["{variants_folder}", "--phenotypes", "{variants_folder}/participants.tsv",
                                     "--output", "out"], 0,
      stderr=r"warning: classes .*'control' ~ 'Control'.*\"Control\": \"control\""),
    B("no_class_variants", ["{edges_dot}", *EDGES], 0, absent=r"differ only by case"),
    # --- outputs never over inputs; writable before any import work -------------------------------------------
    B("output_is_the_input_table", ["{edges_dot}", "--format", "edges", "--output", "{edges_dot}", "--overwrite"],
      stderr=r"--output: expected a folder apart from the inputs, got .*edges_dot\.csv, which holds the input"),
    B("output_is_the_input_folder", ["{cohort}", "--output", "{cohort}", "--overwrite"],
      stderr=r"--output: expected a folder apart from the inputs"),
    B("output_is_the_phenotypes", ["{cohort}", "--phenotypes", "{cohort}/participants.tsv", "--output",
                                   "{cohort}/participants.tsv"], stderr=r"which holds the input .*participants\.tsv"),
    B("output_holds_the_input", ["{cohort}", "--output", "{base}"], stderr=r"which holds the input"),
    B("output_under_a_file", ["{edges_dot}", *EDGES[:2], "--output", "{a_file}/out"],
      stderr=r"--output: expected a writable place, got .*a_file/out, under the file"),
    B("output_unwritable", ["{edges_dot}", *EDGES[:2], "--output", "/proc/lcm_hf_out"],
      stderr=r"--output: expected a writable place, got /proc/lcm_hf_out: /proc is not writable", absent=r"tmp"),
    B("output_is_a_file", ["{cohort}", "--output", "{a_file}"], stderr=r"--output: expected a folder, got the file"),
    B("output_is_a_link_to_the_input", ["{cohort}", "--output", "{cohort_link}", "--overwrite"],
      stderr=r"--output: expected a folder apart from the inputs, got .*cohort_link"),
    B("output_not_written_by_lcm", ["{edges_dot}", *EDGES[:2], "--output", "{not_lcm}", "--overwrite"],
      stderr=r"--overwrite replaces only a dataset lcm-hf wrote"),
    B("stale_temporary_folders", ["{edges_dot}", *EDGES[:2], "--output", "{stale}/out"], 0),
    # --- misleading messages made right -------------------------------------------------------------------------
    B("stray_participants_table", ["{stray}", "--phenotypes", "{stray_table}", "--output", "out"], 0,
      stderr=r"warning: skipping participants\.tsv in .*stray: a phenotype table by its name"),
    B("first_file_wrong_roi_count", ["{first_odd}", "--phenotypes", "{first_odd}/participants.tsv", "--output", "out"],
      stderr=rf"expected {NUM_ROIS} ROIs \(as in 4 of 5 files\), got {NUM_ROIS - 1} in .*sub-01_task-rest_run-1_bold"
             r"\.tsv \(the first file\)", absent=r"sub-02"),
    B("later_file_wrong_roi_count", ["{later_odd}", "--phenotypes", "{later_odd}/participants.tsv", "--output", "out"],
      stderr=rf"expected {NUM_ROIS} ROIs \(as in the first file sub-01_task-rest_run-1_bold\.tsv\), got "
             rf"{NUM_ROIS - 1} in .*sub-03"),
    B("two_files_wrong_roi_count", ["{two_odd}", "--phenotypes", "{two_odd}/participants.tsv", "--output", "out"],
      stderr=r"got 7 in .*sub-02_task-rest_run-1_bold\.tsv; 1 more file differs: sub-04_task-rest_run-1_bold\.tsv"),
    # --- training scripts: counts refused by flag, before any data is read -------------------------------------
    P("window_size_negative", ["--window_size", "-40"], r"^error: --window_size: expected a positive number of TRs, "
                                                        r"got -40\n$"),
    P("window_size_zero", ["--window_size", "0"], r"--window_size: expected a positive number of TRs, got 0"),
    P("window_stride_zero", ["--window_stride", "0"], r"--window_stride: expected a positive number of TRs, got 0"),
    P("epochs_negative", ["--num_train_epochs", "-1"], r"--num_train_epochs: expected a positive number of epochs"),
    P("epochs_zero", ["--num_train_epochs", "0"], r"--num_train_epochs: expected a positive number of epochs .*got 0"),
    P("max_steps_zero", ["--max_steps", "0"], r"--max_steps: expected a positive number of optimizer steps"),
    P("max_steps_negative", ["--max_steps", "-5"], r"--max_steps: expected a positive number .* got -5"),
    P("batch_size_zero", ["--per_device_train_batch_size", "0"],
      r"--per_device_train_batch_size: expected a positive number of windows, got 0"),
    P("eval_batch_size_negative", ["--per_device_eval_batch_size", "-2"], r"--per_device_eval_batch_size: expected"),
    P("momentum_epochs_negative", ["--momentum_epochs", "-1"], r"--momentum_epochs: expected an integer >= 0, got -1"),
    P("flag_misspelt", ["--lerning_rate", "1e-3"],
      r"^error: unknown option --lerning_rate: expected one of this script's options \(--help lists them\); did "
      r"you mean --learning_rate"),
    P("flag_misspelt_finetune", ["--new-bies", "diagnosis"], r"unknown option --new-bies: .*did you mean --new_beis",
      command="finetune"),
    P("flag_abbreviated", ["--num_train_epoch", "2"],
      r"unknown option --num_train_epoch: .*did you mean --num_train_epochs"),  # never taken as a prefix
    P("stray_argument", ["extra"], r"expected options \(--name value\), got the stray argument\(s\) \['extra'\]"),
    P("label_smoothing_ignored", ["--label_smoothing_factor", "0.1"],
      r"--label_smoothing_factor: expected 0 \(the model computes its own per-BEI loss, which does not smooth "
      r"labels\), got 0.1"),
    P("bootstrap_resamples_zero", ["--bootstrap_resamples", "0"], r"--bootstrap_resamples: expected a positive"),
    # --- training outputs never over inputs ---------------------------------------------------------------------
    P("output_dir_is_the_dataset", ["--output_dir", "{dataset}"],
      r"--output_dir: expected a folder apart from the inputs, got .*dataset, which is the input"),
    P("output_dir_is_another_dataset", ["--output_dir", "{other_dataset}"],
      r"--output_dir: expected a folder for the model, got .*other_dataset, which holds a dataset"),
    P("output_dir_holds_the_dataset", ["--output_dir", "{base}"], r"which holds the input"),
    P("output_dir_inside_the_dataset", ["--output_dir", "{dataset}/model"], r"which is inside the input"),
    P("output_dir_under_a_file", ["--output_dir", "{a_file}/run"], r"--output_dir: expected a writable place"),
    P("output_dir_is_a_link_to_the_dataset", ["--output_dir", "{dataset_link}"],
      r"--output_dir: expected a folder apart from the inputs, got .*dataset_link, which is the input"),
    P("output_dir_unwritable", ["--output_dir", "/proc/lcm_hf_run"], r"--output_dir: expected a writable place, got "
                                                                     r"/proc/lcm_hf_run: /proc is not writable"),
    Case("categorical_integer_column", "pretrain", [
        "--dataset_dirs", "{ages_dataset}", "--categorical_columns", "age", "--output_dir", "out", "--use_cpu",
        "--report_to", "none", "--window_size", "20"], 2,
        r"categorical BEI 'age' \(--categorical_columns\): expected a few classes, got 12 distinct integer values over "
        r"12 labelled subjects .*--continuous_columns age"),
    P("finetune_output_is_the_model", ["--output_dir", "{pretrained}"],
      r"--output_dir: expected a folder apart from the inputs, got .*pretrained, which is the input", "finetune"),
    P("finetune_output_is_the_dataset", ["--output_dir", "{dataset}"], r"which is the input .*dataset", "finetune"),
    P("finetune_window_size_negative", ["--window_size", "-40"], r"--window_size: expected a positive number of TRs, "
                                                                 r"got -40", "finetune"),
    P("finetune_epochs_negative", ["--num_train_epochs", "-1"], r"--num_train_epochs: expected", "finetune"),
    P("finetune_lora_rank_zero", ["--lora_r", "0"], r"--lora_r: expected a positive rank, got 0", "finetune"),
    # --- censored (scrubbed) volumes: one policy whatever the spelling (checked in test_censored_volumes_published) -
    *[B(f"{name}_refused", [f"{{{name}}}", "--phenotypes", f"{{{name}}}/participants.tsv", "--output", "out"], 2,
        rf"expected no censored volumes \(rows of empty, NaN or n/a cells\) in the time series "
        rf".*sub-02_task-rest_run-1_bold{suffix}, got 3 of 30 \(TRs 3, 4, 20; 0-based\): pass --censored-volumes drop")
      for name, suffix in (("censored_empty_tsv", r"\.tsv"), ("censored_empty_csv", r"\.csv"), ("censored_nan", r"\.tsv"),
                           ("censored_bids", r"\.tsv"), ("censored_r_na", r"\.csv"), ("censored_npy", r"\.npy"))],
    B("censored_first_tr_is_data_not_a_header", ["{censored_first_tr}", "--phenotypes",
                                                  "{censored_first_tr}/participants.tsv", "--output", "out"], 2,
      r"got 4 of 30 \(TRs 0, 3, 4, 20; 0-based\): pass --censored-volumes drop"),
    B("censored_partial_row_refused_with_drop", ["{censored_partial}", "--phenotypes",
                                                  "{censored_partial}/participants.tsv", "--censored-volumes", "drop",
                                                  "--output", "out"], 2,
      r"expected finite values in the time series .*sub-02_task-rest_run-1_bold\.tsv, got 1 NaN/inf \(first at row 9, "
      r"column 2\); 1 row with only some ROIs missing \(TR 9\): a censored volume is a whole row"),
    B("censored_all_volumes", ["{censored_all}", "--phenotypes", "{censored_all}/participants.tsv",
                               "--censored-volumes", "drop", "--output", "out"], 2,
      r"expected valid volumes in the time series .*sub-02_task-rest_run-1_bold\.tsv, got all 30 censored"),
    B("censored_drop_published", ["{censored_empty_tsv}", "--phenotypes", "{censored_empty_tsv}/participants.tsv",
                                  "--censored-volumes", "drop", "--output", "out"], 0,
      r"censored volumes \(--censored-volumes drop\): 3 of 120 TRs in 1 of 4 scans: sub-02/task-rest_run-1 \(3\); FC "
      r"uses the valid volumes"),
    B("censored_drop_connectivity", ["{censored_npy}", "--phenotypes", "{censored_npy}/participants.tsv",
                                     "--censored-volumes", "drop", "--connectivity", "--output", "out"], 0,
      r"3 of 120 TRs in 1 of 4 scans"),
    B("censored_drop_windows", ["{censored_r_na}", "--phenotypes", "{censored_r_na}/participants.tsv",
                                "--censored-volumes", "drop", "--window-size", "10", "--output", "out"], 0,
      r"warning: 2 windows of 10 TRs in 1 of 4 series hold censored volumes and were dropped \(no window straddles a "
      r"gap\): sub-02/task-rest_run-1 \(2\)"),
    B("censored_flag_with_connectivity_format", ["{censored_bids}", "--format", "connectivity",
                                                  "--censored-volumes", "drop", "--output", "out"], 2,
      r"--censored-volumes drop: expected with --format folder \(time-series files\), got --format connectivity"),
    B("censored_flag_unknown_policy", ["{censored_bids}", "--censored-volumes", "keep", "--output", "out"], 2,
      r"--censored-volumes: invalid choice: 'keep'"),
    C("predict_censored_refused", ["predict", "--model", "{pretrained}", "--timeseries", "{censored_series}"],
      r"expected no censored volumes .*censored_bids/sub-02_task-rest_run-1_bold\.tsv, got 3 of 30 \(TRs 3, 4, 20; "
      r"0-based\): pass --censored-volumes drop"),
    # --- lcm-hf predict / embed -----------------------------------------------------------------------------------
    C("predict_threads_zero", ["predict", "--model", "{pretrained}", "--timeseries", "{series}", "--num-threads", "0"],
      r"argument --num-threads: expected a positive number of threads, got '0'"),
    C("predict_model_is_a_dataset", ["predict", "--model", "{dataset}", "--timeseries", "{series}"],
      r"--model: expected a model folder .*, got '.*dataset', which is a dataset folder \(build_dataset\.py output\)"),
    C("predict_model_is_a_file", ["predict", "--model", "{edges_dot}", "--timeseries", "{series}"],
      r"--model: expected a model folder .*got no folder at"),
    C("predict_model_is_empty", ["predict", "--model", "{empty}", "--timeseries", "{series}"],
      r"--model: expected a model folder .*which has no config\.json"),
    C("predict_model_is_a_run", ["predict", "--model", "{run}", "--timeseries", "{series}"],
      r"which has no config\.json; it holds checkpoint-5: pass .*run/checkpoint-5"),
    C("embed_output_is_the_input", ["embed", "--model", "{pretrained}", "--timeseries", "{series}", "--output",
                                    "{series}", "--overwrite"],
      r"--output: expected a file apart from the inputs, got .*series\.tsv, which is the input"),
    C("embed_output_is_the_input_no_overwrite", ["embed", "--model", "{pretrained}", "--timeseries", "{series}",
                                                 "--output", "{series}"], r"which is the input"),
    C("embed_output_is_the_second_input", ["embed", "--model", "{pretrained}", "--timeseries", "{series}",
                                           "{series2}", "--output", "{series2}", "--overwrite"], r"series2\.tsv.* input"),
    C("embed_output_is_the_model", ["embed", "--model", "{pretrained}", "--timeseries", "{series}", "--output",
                                    "{pretrained}", "--overwrite"], r"which is the input"),
    C("embed_output_is_a_link_to_the_input", ["embed", "--model", "{pretrained}", "--timeseries", "{series}",
                                              "--output", "{series_link}", "--overwrite"], r"which is the input"),
    C("embed_output_is_a_folder", ["embed", "--model", "{pretrained}", "--timeseries", "{series}", "--output",
                                   "{empty}"], r"--output: expected a file to write, got the folder"),
    C("embed_output_under_a_file", ["embed", "--model", "{pretrained}", "--timeseries", "{series}", "--output",
                                    "{a_file}/x.parquet"], r"--output: expected a writable place"),
    C("embed_output_exists", ["embed", "--model", "{pretrained}", "--timeseries", "{series}", "--output",
                              "{existing}.parquet"], r"existing\.parquet exists; pass .*--overwrite"),
    # --- delimiters, decimal commas, .xlsx tables (values checked in test_text_formats_import_right) -------------
    *[B(name, [f"{{{name}}}", "--phenotypes", f"{{{name}}}/participants.tsv", "--output", "out"], 0)
      for name in ("semicolon_csv", "decimal_comma_semicolon", "decimal_comma_tab_txt", "whitespace_csv", "tab_csv")],
    B("decimal_comma_ambiguous", ["{decimal_comma_one_column}", "--output", "out"],
      stderr=r"expected one way to read .*sub-01_task-rest_bold\.csv, got two: comma-delimited with decimal points "
             r"\(2 columns\) or whitespace-delimited with decimal commas \(1 column\)"),
    B("phenotypes_semicolon_decimal_comma", ["{phenotypes_semicolon}", "--phenotypes",
                                             "{phenotypes_semicolon}/participants.csv", "--output", "out"], 0),
    B("phenotypes_two_delimiters", ["{phenotypes_two_delimiters}", "--phenotypes",
                                    "{phenotypes_two_delimiters}/participants.csv", "--output", "out"],
      stderr=r"expected one delimiter in .*participants\.csv, got two .*semicolon \(2 columns\) and comma"),
    B("phenotypes_mixed_decimal_marks", ["{phenotypes_mixed_decimals}", "--phenotypes",
                                         "{phenotypes_mixed_decimals}/participants.csv", "--output", "out"],
      stderr=r"expected one decimal mark in .*participants\.csv, got decimal commas in column 'age' \('30,5'\) and "
             r"decimal points in column 'height'"),
    B("phenotypes_xlsx", ["{phenotypes_xlsx}", "--phenotypes", "{phenotypes_xlsx}/phenotypes.xlsx", "--output", "out"],
      0 if HAVE_OPENPYXL else 2, stderr=None if HAVE_OPENPYXL else r'pip install "lcm-hf\[xlsx\]"'),
    B("phenotypes_xlsx_without_openpyxl", ["{phenotypes_xlsx}", "--phenotypes", "{phenotypes_xlsx}/phenotypes.xlsx",
                                           "--output", "out"],
      stderr=r'^error: expected openpyxl to read the Excel phenotype table .*phenotypes\.xlsx: pip install '
             r'"lcm-hf\[xlsx\]" \(or save the sheet as CSV\)$', without=["openpyxl"]),
    B("edges_xlsx", ["{edges_sheet}", *EDGES], 0 if HAVE_OPENPYXL else 2,
      stderr=None if HAVE_OPENPYXL else r'pip install "lcm-hf\[xlsx\]"'),
    B("edges_xlsx_without_openpyxl", ["{edges_sheet}", *EDGES], stderr=r'expected openpyxl to read the Excel '
                                                                      r'edge table .*pip install "lcm-hf\[xlsx\]"',
      without=["openpyxl"]),
    B("edges_semicolon_decimal_comma", ["{edges_decimal_comma}", *EDGES], 0),
    # --- header rows: ROI codes, mixed styles, labels never dropped -----------------------------------------------
    B("code_header", ["{code_header}", "--phenotypes", "{code_header}/participants.tsv", "--output", "out"], 0),
    B("code_header_label_column", ["{code_header_label_column}", "--phenotypes",
                                   "{code_header_label_column}/participants.tsv", "--output", "out"], 0),
    B("pandas_index_and_codes", ["{pandas_index}", "--phenotypes", "{pandas_index}/participants.tsv", "--output",
                                 "out"], 0),
    B("code_header_above_integers", ["{code_header_integers}", "--phenotypes",
                                     "{code_header_integers}/participants.tsv", "--output", "out"],
      stderr=r"expected a header row or data on line 1 of .*sub-01_task-rest_bold\.tsv, got 2001 2011 2021 \.\.\.: "
             r"ROI codes or the first time point .*pass --header yes .* or --header no"),
    B("code_header_above_integers_header_yes", ["{code_header_integers}", "--phenotypes",
                                                "{code_header_integers}/participants.tsv", "--output", "out",
                                                "--header", "yes"], 0),
    B("code_header_above_integers_header_no", ["{code_header_integers}", "--phenotypes",
                                               "{code_header_integers}/participants.tsv", "--output", "out",
                                               "--header", "no"], 0),
    B("names_header_with_header_no", ["{tab_csv}", "--phenotypes", "{tab_csv}/participants.tsv", "--output", "out",
                                      "--header", "no"],
      stderr=r"expected numbers on line 1 of .*sub-01_task-rest_bold\.csv \(header='no' / --header no: no header "
             r"row\), got 'roi_0'"),
    B("mixed_header_styles", ["{mixed_headers}", "--phenotypes", "{mixed_headers}/participants.tsv", "--output", "out"],
      stderr=r"expected a header row of ROI labels in every file or in none, got one in .*sub-01_task-rest_bold\.tsv "
             r"and none in .*sub-02_task-rest_bold\.tsv"),
    B("header_wider_than_the_data", ["{header_too_wide}", "--phenotypes", "{header_too_wide}/participants.tsv",
                                     "--output", "out"],
      stderr=rf"expected one ROI label per column in the header row \(line 1\) of .*bold\.tsv, got {NUM_ROIS + 1} "
             rf"labels for {NUM_ROIS} columns"),
    B("header_flag_with_edges", ["{edges_dot}", *EDGES, "--header", "yes"],
      stderr=r"--header yes: expected with --format folder \(time-series text files\), got --format edges"),
    C("predict_code_header_ambiguous", ["predict", "--model", "{pretrained}", "--timeseries", "{code_file}"],
      r"sub-01_task-rest_bold\.tsv, got 2001 2011 2021 .*--header yes"),
    # --- fMRIPrep derivatives: the confounds tables beside the series -------------------------------------------
    B("fmriprep_confounds_clash", ["{fmriprep}", "--output", "out"],
      stderr=r"expected one file per scan, got .*desc-aal_timeseries\.tsv and .*desc-confounds_timeseries\.tsv .*"
             r"read only the series with --pattern '\*desc-aal_timeseries\.tsv' .*fMRIPrep confounds table"),
    B("fmriprep_with_pattern", ["{fmriprep}", "--output", "out", "--pattern", "*desc-aal_timeseries.tsv"], 0),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(world, case):
    result = world["results"][case.id]
    stderr = result["stderr"]
    assert result["rc"] == case.rc, f"{case.id}: exit {result['rc']}\n{stderr[-3000:]}"
    if case.rc == 2:
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
        assert ONE_LINE.match(errors[0] + "\n")
    if case.stderr:
        assert re.search(case.stderr, stderr, flags=re.S | re.M), f"{case.id}:\n{stderr[-3000:]}"
    if case.absent:
        assert not re.search(case.absent, stderr.split("error:")[-1] if case.rc == 2 else stderr), stderr[-3000:]
    if case.rc == 2:  # a refusal writes nothing
        assert not os.path.exists(output(world, case.id))


# ---------------------------------------------------------------------------------------------------- the results
IMPORTED = {  # case id -> (reference, ROI labels or None, fill of the diagonal)
    "edges_dot": ("dot", LABELS, 1.0), "edges_dash_tsv": ("dash", LABELS, 1.0),
    "edges_underscores": ("underscores", LABELS, 1.0), "edges_index": ("index", None, 1.0),
    "edges_index_from_1": ("index1", None, 1.0), "edges_prefix_index": ("prefix_index", None, 1.0),
    "edges_prefix_pairs": ("prefix_pair", LABELS, 1.0), "edges_with_diagonal": ("diag", LABELS, 1.0),
    "edges_fisher_z": ("fisher", LABELS, 0.0), "edges_txt_tab": ("txt", LABELS, 1.0),
    "edges_labels_with_dashes": ("dashed_labels", ["ctx-lh-a", "ctx-lh-b", "R-1", "x"], 1.0),
    "edges_site_column": ("site", LABELS, 1.0), "edges_dotted_phenotype": ("dotted_phenotype", LABELS, 1.0),
    "edges_subject_flag": ("subject", LABELS, 1.0), "edges_scan_column": ("scans", LABELS, 1.0),
    "class_case_variants_edges": ("variants", LABELS, 1.0),
}


@pytest.mark.parametrize("case_id", sorted(IMPORTED))
def test_edge_tables_import_right(world, case_id):
    name, labels, fill = IMPORTED[case_id]
    dataset = load(output(world, case_id))
    reference = world["refs"][name].copy()
    for matrix in reference:
        np.fill_diagonal(matrix, fill)
    got = np.stack([np.asarray(row, dtype=np.float64) for row in dataset["connectivity"]])
    np.testing.assert_allclose(got, reference, atol=1e-6)
    assert ("roi_labels" in dataset.column_names) == (labels is not None)
    if labels is not None:
        assert dataset[0]["roi_labels"] == labels
    assert dataset["subject_id"] == ([f"sub-{s + 1:02d}" for s in range(len(reference))] if name != "scans" else
                                     ["sub-01", "sub-01", "sub-02", "sub-02"])
    assert all(ident not in dataset.column_names for ident in ("participant_id", "Subject_Code"))


def test_edge_table_phenotypes_and_options(world):
    dot = load(output(world, "edges_dot"))
    assert dot["sex"] == ["F", "M"] * 3 and dot["age"] == [float(20 + s) for s in range(6)]
    assert set(dot["dataset"]) == {"edges_dot"} and dot["scan_id"] == [f"row-{i}" for i in range(1, 7)]
    assert load(output(world, "edges_site_column"))["site"] == ["A", "B"] * 3
    assert load(output(world, "edges_dotted_phenotype"))["age.years"] == [20.0, 21, 22, 23, 24, 25]
    subset = load(output(world, "edges_columns_subset"))
    assert "sex" in subset.column_names and "age" not in subset.column_names
    assert set(load(output(world, "edges_dataset_name"))["dataset"]) == {"cohort_x"}
    assert load(output(world, "edges_scan_column"))["scan_id"] == ["1", "2", "1", "2"]
    from lcm_hf.data import load_published

    split = load_published(output(world, "edges_split"))
    assert set(split) == {"train", "test"} and not set(split["train"]["subject_id"]) & set(split["test"]["subject_id"])


FORMATS = {  # case id -> (reference folder, ROI labels, rows of the first file that are data)
    "semicolon_csv": ("semicolon_csv", [f"roi_{i}" for i in range(NUM_ROIS)], None),
    "decimal_comma_semicolon": ("decimal_comma_semicolon", [f"roi_{i}" for i in range(NUM_ROIS)], None),
    "decimal_comma_tab_txt": ("decimal_comma_tab_txt", None, None),
    "whitespace_csv": ("whitespace_csv", None, None),
    "tab_csv": ("tab_csv", [f"roi_{i}" for i in range(NUM_ROIS)], None),
    "code_header": ("code_header", CODES, None),
    "code_header_label_column": ("code_header_label_column", CODES, None),
    "pandas_index_and_codes": ("pandas_index", CODES, None),
    "code_header_above_integers_header_yes": ("code_header_integers", CODES, None),
    "code_header_above_integers_header_no": ("code_header_integers", None, "codes"),
}


@pytest.mark.parametrize("case_id", sorted(FORMATS))
def test_text_formats_import_right(world, case_id):
    """Every delimiter / decimal mark / header style gives the numbers written (float64 reference, stored float32)
    and the ROI labels of the header, never a header row as a time point."""
    name, labels, extra = FORMATS[case_id]
    dataset = load(output(world, case_id))
    refs = world["refs"][name]
    assert sorted(dataset["subject_id"]) == sorted(refs)
    for row in dataset:
        expected = refs[row["subject_id"]]
        if extra == "codes":  # --header no: the code row is the first time point, as asked
            expected = np.vstack([np.asarray(CODES, dtype=np.float64), expected])
        np.testing.assert_allclose(np.asarray(row["timeseries"], dtype=np.float64), expected, rtol=1e-6)
    assert ("roi_labels" in dataset.column_names) == (labels is not None)
    if labels is not None:
        assert dataset[0]["roi_labels"] == labels


def test_phenotype_and_edge_formats_import_right(world):
    semicolon = load(output(world, "phenotypes_semicolon_decimal_comma"))
    assert dict(zip(semicolon["subject_id"], semicolon["age"])) == {"sub-01": 30.5, "sub-02": 41.25, "sub-03": 27.0}
    fmriprep = load(output(world, "fmriprep_with_pattern"))
    assert len(fmriprep) == 2 and fmriprep[0]["roi_labels"] == [f"roi_{i}" for i in range(NUM_ROIS)]
    edges = ["edges_semicolon_decimal_comma"] + (["edges_xlsx"] if HAVE_OPENPYXL else [])
    for case_id, name in zip(edges, ["edges_decimal_comma", "edges_xlsx"]):
        dataset = load(output(world, case_id))
        reference = world["refs"][name].copy()
        for matrix in reference:
            np.fill_diagonal(matrix, 1.0)
        got = np.stack([np.asarray(row, dtype=np.float64) for row in dataset["connectivity"]])
        np.testing.assert_allclose(got, reference, atol=1e-6)
        assert dataset[0]["roi_labels"] == LABELS and dataset["age"] == [float(20 + s) for s in range(6)]
    if HAVE_OPENPYXL:
        sheet = load(output(world, "phenotypes_xlsx"))
        assert dict(zip(sheet["subject_id"], sheet["age"])) == {"sub-01": 30.5, "sub-02": 41.25, "sub-03": 27.0}


def test_refusals_leave_the_inputs_as_they_were(world):
    files = world["files"]
    for name, content in world["before"].items():
        assert open(files[name], "rb").read() == content
    assert open(os.path.join(files["dataset"], ".lcm_hf_output.json")).read() == world["markers"]["dataset"]
    assert sorted(os.listdir(files["pretrained"])) == ["config.json"]
    assert open(files["a_file"]).read() == "not a folder\n"
    assert open(os.path.join(files["base"], "existing.parquet"), "rb").read() == b"old"
    assert not any(name.startswith(".lcm_hf-write-check") for name in os.listdir(files["base"]))


def test_stale_temporary_folders_of_killed_writes_are_removed(world):
    stale = world["files"]["stale"]
    assert sorted(os.listdir(stale)) == sorted(["out", f".out.tmp-{os.getpid()}"])  # a live process's is kept
    assert len(load(os.path.join(stale, "out"))) == 6


def test_censored_volumes_published(world):
    """The count column, the series kept with its censored volumes in place, FC of the valid rows (numpy float64),
    windows of consecutive valid TRs only."""
    valid = np.setdiff1d(np.arange(30), CENSORED_TRS)
    dataset = load(output(world, "censored_drop_published"))
    assert dataset["subject_id"] == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert dataset["censored_volumes"] == [0, 3, 0, 0]
    stored = np.asarray(dataset[1]["timeseries"], dtype=np.float64)
    assert np.flatnonzero(np.isnan(stored).all(axis=1)).tolist() == CENSORED_TRS
    np.testing.assert_allclose(stored[valid], censored_series()[valid], rtol=1e-6)
    fc = load(output(world, "censored_drop_connectivity"))
    assert fc["censored_volumes"] == [0, 3, 0, 0]
    np.testing.assert_allclose(np.asarray(fc[1]["connectivity"]), np.corrcoef(censored_series()[valid].T), atol=1e-5)
    windows = load(output(world, "censored_drop_windows"))
    sub02 = [row for row in windows if row["subject_id"] == "sub-02"]
    assert len(sub02) == 1 and sub02[0]["censored_volumes"] == 3  # windows at 0, 10, 20: only 10-19 is whole
    np.testing.assert_allclose(np.asarray(sub02[0]["timeseries"]), censored_series()[10:20], rtol=1e-5)


def test_stray_table_and_roi_labels(world):
    dataset = load(output(world, "stray_participants_table"))
    assert len(dataset) == 4 and dataset[0]["roi_labels"] == [f"roi_{i}" for i in range(NUM_ROIS)]


def test_nearest_counts_and_pair_rules():
    from lcm_hf.data.connectivity_import import nearest_vector_sizes
    from lcm_hf.data.edge_table import find_edge_columns

    for length in range(1, 200):  # against a brute-force list of the valid lengths
        valid = [(n * (n - 1) // 2, n) for n in range(2, 40)]
        below = [v for v in valid if v[0] < length][-1:]
        above = [v for v in valid if v[0] > length][:1]
        if length not in [v[0] for v in valid]:
            assert nearest_vector_sizes(length) == below + above, length
    assert find_edge_columns(["id", "age-at-scan", "A-B", "A-C", "B-C"]).labels == ["A", "B", "C"]
    assert find_edge_columns(["id", "x.y"]) is None  # one 'A.B' column is not an edge table
    assert find_edge_columns(["id", "A.A", "A.B", "B.B"], diagonal=True).labels == ["A", "B"]


# ---------------------------------------------------------------------------------------------------- slow: runs
def _run(script, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    command = ["lcm-hf"] if script == "lcm-hf" else [sys.executable, os.path.join(ROOT, script)]
    if script == "lcm-hf":
        command = [sys.executable, "-c", "import sys; from lcm_hf.cli import main; sys.exit(main())"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)


@pytest.mark.slow
def test_resumed_run_says_from_where_and_counts_its_own_steps(world, tmp_path):
    from own_data import TINY_MODEL

    common = ["--dataset_dirs", world["files"]["ages_dataset"], "--categorical_columns", "sex", "--window_size", "20",
              "--output_dir", tmp_path / "run", *TINY_MODEL, "--per_device_train_batch_size", "8", "--use_cpu",
              "--report_to", "none", "--disable_tqdm", "true", "--baseline", "false", "--eval_strategy", "steps",
              "--save_strategy", "steps", "--eval_steps", "2", "--save_steps", "2", "--momentum_epochs", "0",
              "--load_best_model_at_end", "false", "--calibrate", "false"]
    first = _run("training/pretrain.py", *common, "--max_steps", "4")
    assert first.returncode == 0, first.stderr[-3000:]
    assert re.search(r"trained 4 steps in", first.stdout + first.stderr)
    second = _run("training/pretrain.py", *common, "--max_steps", "6", "--resume_from_checkpoint", "true")
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert re.search(rf"resuming from {re.escape(str(tmp_path / 'run' / 'checkpoint-4'))} .*continues at step 4",
                     output), output[-3000:]
    assert re.search(r"trained 2 steps \(resumed at step 4, now at step 6\)", output), output[-3000:]


@pytest.mark.slow
def test_embed_over_its_input_with_overwrite_as_a_real_command(world):
    """The destructive case of issue 19, as a separate process: the input series keeps its bytes."""
    series = world["files"]["series"]
    process = _run("lcm-hf", "embed", "--model", world["files"]["pretrained"], "--timeseries", series, "--output",
                   series, "--overwrite")
    assert process.returncode == 2 and "which is the input" in process.stderr
    assert open(series, "rb").read() == world["before"]["series"]


def test_case_table_size():
    assert len(CASES) >= 140 and len({case.id for case in CASES}) == len(CASES)  # issue 19: at least 100
    json.dumps([case.argv for case in CASES])


def test_two_dataset_folders_of_one_name_read_their_own_rows(tmp_path):
    """`datasets` caches a local folder by its name: `a/dataset` must not come back as `b/dataset` (nor a
    republished folder as its older self)."""
    import datasets

    from lcm_hf.data import load_connectome_dataset, load_published, publish_dataset

    for name, rows, value in (("a", 4, 1.0), ("b", 6, 2.0)):
        publish_dataset(datasets.Dataset.from_dict({"subject_id": [f"s{i}" for i in range(rows)], "x": [value] * rows}),
                        tmp_path / name / "dataset")
    for _ in range(2):  # the second round reads from the caches
        assert list(load_connectome_dataset(tmp_path / "a" / "dataset")["x"]) == [1.0] * 4
        assert list(load_published(tmp_path / "b" / "dataset")["train"]["x"]) == [2.0] * 6
    publish_dataset(datasets.Dataset.from_dict({"subject_id": ["s0", "s1", "s2"], "x": [3.0] * 3}),
                    tmp_path / "a" / "dataset", overwrite=True)
    assert list(load_connectome_dataset(tmp_path / "a" / "dataset")["x"]) == [3.0] * 3


def test_stale_staging_of_killed_saves_is_removed_on_the_next_write(tmp_path):
    """Model saves (saving_lcm.staged_save) and single files (atomic_write_text) clean their killed siblings too."""
    from lcm_hf.atomic import atomic_write_text
    from lcm_hf.saving_lcm import staged_save

    (tmp_path / f".model.tmp-{DEAD_PID}").mkdir()
    (tmp_path / f".model.old-{DEAD_PID}").mkdir()
    (tmp_path / f".model.tmp-{os.getpid()}-other").mkdir()  # not a staging name: kept
    (tmp_path / f".report.json.tmp-{DEAD_PID}").write_text("half")
    (tmp_path / f".other.tmp-{DEAD_PID}").mkdir()  # another output's: not this write's to remove
    def save(folder):  # as save_pretrained does: it makes the folder
        os.makedirs(folder)
        open(os.path.join(folder, "config.json"), "w").close()

    staged_save(tmp_path / "model", save)
    atomic_write_text(tmp_path / "report.json", "{}")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["model", "report.json", f".model.tmp-{os.getpid()}-other", f".other.tmp-{DEAD_PID}"])
