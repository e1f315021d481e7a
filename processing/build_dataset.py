"""Raw files -> a published connectome dataset (parquet shards + dataset card).

Importers (``--format``):

  folder  A folder of per-scan ROI time-series files (.1D, .tsv, .csv, .txt, .npy, .mat;
          rows = time points, columns = ROIs; tab, ';', ',' or whitespace between values and
          decimal commas (0,5) detected from the content; '#' header lines, a header row of ROI names
          or codes and a first column of labels are skipped: --header auto (default) takes a first
          row of names, or of ROI codes (whole numbers, all distinct: 2001 2002 ...) above decimal
          data, and refuses codes above whole numbers as ambiguous; --header yes|no decides; files with
          and without a header row in one folder are refused) matched to rows of a phenotype table
          (--phenotypes: .csv/.tsv/.txt, delimiter detected, or .xlsx with pip install "lcm-hf[xlsx]").
          subject_id comes from the subject: the table's --subject-column
          (alias --id-column; default subject_id / participant_id / subject / SUB_ID) matched
          exactly to the 'sub-XX' label of 'sub-XX[_ses-YY][_task-ZZ][_run-NN]*' names ('sub-' and
          leading zeros ignored, never a substring: sub-13 is not subject 1), or to the stem / its
          first '_' token of other names (or the 'subject' group of --subject-pattern). scan_id is
          'ses-YY_task-ZZ_run-NN' (or the file stem). A per-scan table names its scan column
          (--scan-column: 'ses-1_run-2', 'run-2', the stem or the file name); per-subject rows
          apply to all of the subject's scans. Files without a row, rows without a file and
          duplicate ids are reported in one summary (--unmatched warn: skip and warn; error: fail;
          keep: keep with missing phenotypes). ses/task/run also become 'session'/'task'/'run'
          columns. '.mat' files: the array under --mat-key. A file holding a square symmetric
          matrix with unit diagonal is refused: use --format connectivity. Censored (scrubbed)
          volumes, rows of empty / NaN / n/a / NA cells, are refused (the file and rows named)
          unless --censored-volumes drop: then they stay NaN rows in their place in time, FC uses
          the valid volumes, a window holding one is dropped (never straddling a gap), and a
          'censored_volumes' column counts them per scan. A row with only some ROIs missing is
          refused either way.
  connectivity
          A folder of ready FC matrices (N x N; .npy, .csv/.tsv/.txt, .mat) or of their upper-
          triangle vectors (row-major; length N(N-1)/2 without the diagonal, or N(N+1)/2 with it
          and --vector-diagonal), matched to --phenotypes as for 'folder'. Checked square,
          symmetric, finite (the file is named). --fc-values correlation (diagonal stored as 1,
          values in [-1, 1]) or fisher_z (diagonal stored as 0).
  nifti   A folder of preprocessed 4-D NIfTI scans ('*.nii' / '*.nii.gz', e.g.
          'sub-XX[_ses-YY][_task-ZZ][_run-NN]_bold.nii.gz'), parcellated with the labels atlas
          image --atlas-image through nilearn's NiftiLabelsMasker (the atlas is resampled to each
          scan; --t-r, --standardize, --detrend, --low-pass/--high-pass clean the signal) and matched
          to --phenotypes rows as for 'folder'. --pattern defaults to '*.nii*' here.
  edges   ONE CSV/TSV table with a row per subject (or per scan, with --scan-column): phenotype columns plus
          the FC's upper-triangle edges as columns (row-major, numpy.triu_indices order; N(N-1)/2 columns,
          N(N+1)/2 with --vector-diagonal). Edge columns are named as ROI pairs 'ROI_A.ROI_B' / 'ROI_A-ROI_B'
          / 'ROI_A__ROI_B' (the ROI labels are taken from them, their row-major order checked), 'e0 ... eK',
          or start with --edge-prefix. The other columns are the phenotypes (the subject column as for
          'folder'); --fc-values as for 'connectivity'. No --phenotypes: the table is both.
  abide   ABIDE preprocessed connectomes as nilearn's fetch_abide_pcp stores them
          (ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_rois_<atlas>.1D) with
          Phenotypic_V1_0b_preprocessed1.csv (found in or above the folder, or --phenotypes);
          DX_GROUP -> diagnosis (autism/control), SEX -> sex (M/F), AGE_AT_SCAN -> age.

Every file must have the ROI count of the first one. Optional steps: --window-size cuts
windows by the LcmProcessor's rule (one row per full window, a shorter tail dropped, subject_id and
scan_id kept; series shorter than a window are reported and handled by --short-series drop|pad; a padded
window's FC ignores the padding),
--connectivity stores Pearson FC instead of time series, --test-size/--validation-size make
subject-grouped splits, stratified by --stratify-by (default: the first categorical phenotype
column, said in one line); a 'split' column of the phenotype table (--split-column) is used as given.

Example::

    python processing/build_dataset.py my_tsvs/ --phenotypes my_tsvs/phenotypes.csv \\
        --id-column participant_id --output my_dataset
    python processing/build_dataset.py my_runs/ --phenotypes my_runs/scans.csv --subject-column subject \\
        --scan-column run --unmatched error --window-size 100 --short-series drop --output my_runs_dataset
    python processing/build_dataset.py my_scrubbed/ --phenotypes my_scrubbed/participants.tsv \\
        --censored-volumes drop --window-size 100 --output my_scrubbed_dataset
    python processing/build_dataset.py my_scans/ --format nifti --atlas-image atlas.nii.gz \\
        --phenotypes my_scans/phenotypes.csv --t-r 2.0 --output my_nifti_dataset
    python processing/build_dataset.py my_fc/ --format connectivity --phenotypes my_fc/phenotypes.csv \\
        --fc-values correlation --output my_fc_dataset
    python processing/build_dataset.py fc_edges.csv --format edges --subject-column participant_id \\
        --output my_edge_dataset
    python -c "import datasets; print(datasets.load_dataset('my_dataset'))"
"""

from __future__ import annotations

import argparse
import sys

from lcm_hf.errors_lcm import LcmInputError
from lcm_hf.timeseries_files_lcm import CENSORED_POLICIES


def build_parser() -> argparse.ArgumentParser:
    from lcm_hf.console import ArgumentParser, add_console_arguments, add_header_argument

    parser = ArgumentParser(
        prog="build_dataset.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="folder of time-series files (NIfTI scans with --format nifti, FC matrices "
                                      "with --format connectivity, one edge table with --format edges, an ABIDE_pcp "
                                      "folder with --format abide)")
    add_console_arguments(parser)
    parser.add_argument("--output", "-o", required=True, help="output folder for the published dataset")
    parser.add_argument("--format", choices=("folder", "nifti", "connectivity", "edges", "abide"), default="folder",
                        help="input layout (default folder: time series)")
    parser.add_argument("--phenotypes", help="phenotype CSV/TSV (required for --format folder to carry labels)")
    parser.add_argument("--subject-column", "--id-column", dest="subject_column",
                        help="phenotype column of subject ids, matched exactly to the files' sub- labels "
                             "(default: subject_id / participant_id / subject / SUB_ID)")
    parser.add_argument("--scan-column", help="phenotype column naming the scan of a per-scan table "
                                              "(ses-1_task-rest_run-1, run-1, the file stem or name)")
    parser.add_argument("--subject-pattern", help="regex giving the subject of non-BIDS file names "
                                                  "(group 'subject', optional group 'scan')")
    parser.add_argument("--site-column", help="phenotype column holding the site (default: site / SITE_ID)")
    parser.add_argument("--columns", nargs="*", help="phenotype columns to keep (default: all)")
    parser.add_argument("--dataset-name", help="value of the 'dataset' column (default: the folder name)")
    parser.add_argument("--pattern", help="glob for file names (default '*', '*.nii*' with --format nifti)")
    parser.add_argument("--mat-key", help="variable holding the time series in .mat files")
    parser.add_argument("--transpose", action="store_true", help="files are ROI x time")
    add_header_argument(parser)
    parser.add_argument("--atlas", default="aal", help="ABIDE atlas suffix (default aal)")
    parser.add_argument("--atlas-image", help="3-D labels atlas NIfTI (required for --format nifti)")
    parser.add_argument("--t-r", type=float, help="repetition time in seconds (--format nifti; needed for filtering)")
    parser.add_argument("--standardize", choices=("zscore_sample", "psc"),
                        help="--format nifti: standardize each region's signal (default: keep the scale)")
    parser.add_argument("--detrend", action="store_true", help="--format nifti: remove linear trends")
    parser.add_argument("--low-pass", type=float, help="--format nifti: low-pass cutoff in Hz (needs --t-r)")
    parser.add_argument("--high-pass", type=float, help="--format nifti: high-pass cutoff in Hz (needs --t-r)")
    parser.add_argument("--unmatched", choices=("warn", "error", "keep"), default="warn",
                        help="files without a row, rows without a file, duplicate ids: one summary, then skip "
                             "unmatched files with a warning (warn), fail (error), or keep them (keep)")
    parser.add_argument("--fc-values", choices=("correlation", "fisher_z"), default="correlation",
                        help="--format connectivity: what the files hold (diagonal stored as 1 or 0)")
    parser.add_argument("--vector-diagonal", action="store_true",
                        help="--format connectivity/edges: vectors include the diagonal (N(N+1)/2; default N(N-1)/2)")
    parser.add_argument("--edge-prefix", help="--format edges: every column starting with this is an edge (default: "
                                              "columns named ROI_A.ROI_B / ROI_A-ROI_B, or e0 ... eK)")
    parser.add_argument("--window-size", type=int,
                        help="cut time series into windows of this many TRs (the LcmProcessor's window rule: full "
                             "windows only, a shorter tail dropped; training uses 90 by default)")
    parser.add_argument("--window-stride", type=int, help="window step (default: the window size)")
    parser.add_argument("--short-series", choices=("pad", "drop"), default="drop",
                        help="series shorter than one window: drop them (default, as training and prediction do) "
                             "or keep one window of their valid TRs (pad); reported either way")
    parser.add_argument("--censored-volumes", choices=CENSORED_POLICIES, default="refuse",
                        help="--format folder: rows of empty / NaN / n/a / NA cells (scrubbed volumes): refuse the "
                             "file (default), or drop them from FC and windows (kept in place as NaN rows, no window "
                             "holds one; counted per scan in a 'censored_volumes' column)")
    parser.add_argument("--connectivity", action="store_true", help="store Pearson FC instead of time series")
    parser.add_argument("--fisher-z", action="store_true", help="Fisher z-transform the stored FC")
    parser.add_argument("--test-size", type=float, default=0.0, help="fraction of subjects in a test split")
    parser.add_argument("--validation-size", type=float, default=0.0, help="fraction of subjects in a validation split")
    parser.add_argument("--stratify-by",
                        help="column to stratify the splits on (default: the first categorical phenotype column, "
                             "e.g. sex or diagnosis, said in one line; '' for none)")
    parser.add_argument("--split-column", default="split",
                        help="phenotype column of split names used as given (default 'split' when present; '' off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows-per-shard", type=int, default=2000)
    parser.add_argument("--name", help="dataset card title")
    parser.add_argument("--description", default="", help="dataset card text")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an output folder holding a dataset lcm-hf wrote (never one holding the inputs)")
    return parser


def check_flags(parser, args) -> None:
    """Refuse flag values that cannot work, before any file is read (one-line usage errors, status 2)."""
    for flag, value in (("--window-size", args.window_size), ("--window-stride", args.window_stride),
                        ("--max-rows-per-shard", args.max_rows_per_shard)):
        if value is not None and value < 1:
            parser.error(f"{flag}: expected a positive integer, got {value}")
    if args.window_stride is not None and not args.window_size:
        parser.error(f"--window-stride {args.window_stride}: expected with --window-size, got no --window-size")
    if args.fisher_z and not args.connectivity:  # else silently ignored: time series (or the files' FC) stored as is
        parser.error("--fisher-z: expected with --connectivity (it transforms the FC computed from time series; "
                     "FC files say what they hold with --fc-values), got no --connectivity")
    if args.format == "abide":  # the ABIDE_pcp layout and phenotype file are read as nilearn stores them
        unused = [flag for flag, value in (
            ("--subject-column", args.subject_column), ("--scan-column", args.scan_column),
            ("--subject-pattern", args.subject_pattern), ("--site-column", args.site_column),
            ("--columns", args.columns), ("--pattern", args.pattern), ("--mat-key", args.mat_key),
            ("--transpose", args.transpose or None), ("--unmatched", None if args.unmatched == "warn" else 1),
        ) if value is not None]
        if unused:
            parser.error(f"--format abide: expected no {', '.join(unused)} (the ABIDE_pcp files and phenotype table "
                         f"are matched as nilearn's fetch_abide_pcp stores them), got {' '.join(unused)}")
    if args.format == "edges":  # one table: its rows are the scans, its other columns the phenotypes
        unused = [flag for flag, value in (
            ("--phenotypes", args.phenotypes), ("--pattern", args.pattern), ("--mat-key", args.mat_key),
            ("--subject-pattern", args.subject_pattern), ("--transpose", args.transpose or None),
            ("--atlas-image", args.atlas_image), ("--window-size", args.window_size),
            ("--connectivity", args.connectivity or None), ("--unmatched", None if args.unmatched == "warn" else 1),
        ) if value is not None]
        if unused:
            parser.error(f"--format edges: expected no {', '.join(unused)} (the one table holds the FC edges and the "
                         f"phenotypes of every subject), got {' '.join(unused)}")
    elif args.edge_prefix is not None:
        parser.error(f"--edge-prefix {args.edge_prefix!r}: expected with --format edges, got --format {args.format}")
    if args.header != "auto" and args.format != "folder":  # the rule of the time-series text files
        parser.error(f"--header {args.header}: expected with --format folder (time-series text files), got --format "
                     f"{args.format}")
    if args.censored_volumes != "refuse" and args.format != "folder":
        parser.error(f"--censored-volumes {args.censored_volumes}: expected with --format folder (time-series files), "
                     f"got --format {args.format}")
    for flag, value in (("--test-size", args.test_size), ("--validation-size", args.validation_size)):
        if not 0 <= value < 1:
            parser.error(f"{flag}: expected a fraction of subjects in [0, 1), got {value}")
    if args.validation_size > 0 and args.test_size <= 0:
        parser.error(f"--validation-size {args.validation_size}: expected with --test-size > 0 (the validation "
                     "split is cut next to a test split), got no --test-size")
    if args.test_size + args.validation_size >= 1:
        parser.error(f"--test-size + --validation-size: expected a sum below 1 (train keeps the rest), got "
                     f"{args.test_size + args.validation_size:g}")


def censored_summary(dataset) -> str:
    """One line: the censored volumes of the scans (the ``censored_volumes`` column) and what became of them."""
    counts = [int(n) for n in dataset["censored_volumes"]]
    total = sum(len(ts) for ts in dataset.with_format("numpy")["timeseries"])
    scans = [(f"{s}/{c}", n) for s, c, n in zip(dataset["subject_id"], dataset["scan_id"], counts) if n]
    shown = ", ".join(f"{name} ({n})" for name, n in sorted(scans, key=lambda item: -item[1])[:5])
    return (f"censored volumes (--censored-volumes drop): {sum(counts)} of {total} TRs in {len(scans)} of "
            f"{len(counts)} scans{': ' + shown if scans else ''}{' ...' if len(scans) > 5 else ''}; FC uses the valid "
            "volumes, no window holds a censored one (column 'censored_volumes')")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_flags(parser, args)
    if args.format == "nifti" and not args.atlas_image:
        parser.error("--format nifti needs --atlas-image PATH (a 3-D labels atlas)")
    if args.format == "connectivity" and (args.window_size or args.connectivity):  # (edges: check_flags)
        parser.error("--format connectivity stores the files' matrices: --window-size and --connectivity need "
                     "time series")
    import datasets
    from datasets import DatasetDict

    datasets.disable_progress_bars()  # the importers' own bar is the one per stage

    from lcm_hf.atomic import check_output_folder
    from lcm_hf.data import (
        add_connectivity,
        class_counts,
        default_stratify_column,
        expand_windows,
        grouped_split,
        import_abide_pcp,
        import_connectivity_folder,
        import_edge_table,
        import_nifti_folder,
        import_timeseries_folder,
        num_rois_of,
        publish_dataset,
        split_by_column,
    )
    from lcm_hf.data.edge_table import refuse_edge_table_input
    from lcm_hf.data.value_checks import warn_class_variants
    from lcm_hf.processing_lcm import LcmProcessor

    inputs = [args.input, args.phenotypes, args.atlas_image]  # the output folder may neither be nor hold them
    try:  # before the (long) import: refuse an output folder we may not replace
        check_output_folder(args.output, kind="dataset", overwrite=args.overwrite, inputs=inputs, flag="--output")
    except ValueError as error:
        parser.error(str(error))

    if args.format in ("folder", "connectivity"):  # one table of edges given as a folder format: say --format edges
        refuse_edge_table_input(args.input, args.phenotypes, args.format)
    matching = dict(subject_column=args.subject_column, scan_column=args.scan_column,
                    dataset_name=args.dataset_name, site_column=args.site_column, phenotype_columns=args.columns,
                    subject_pattern=args.subject_pattern, unmatched=args.unmatched, progress=True)
    if args.format == "abide":
        dataset = import_abide_pcp(args.input, args.phenotypes, atlas=args.atlas,
                                   dataset_name=args.dataset_name or "abide", progress=True)
    elif args.format == "nifti":
        dataset = import_nifti_folder(
            args.input, args.atlas_image, args.phenotypes, pattern=args.pattern or "*.nii*", t_r=args.t_r,
            standardize=args.standardize, detrend=args.detrend, low_pass=args.low_pass, high_pass=args.high_pass,
            **matching)
    elif args.format == "edges":
        dataset = import_edge_table(
            args.input, subject_column=args.subject_column, scan_column=args.scan_column,
            site_column=args.site_column, phenotype_columns=args.columns, edge_prefix=args.edge_prefix,
            values=args.fc_values, vector_diagonal=args.vector_diagonal, dataset_name=args.dataset_name)
    elif args.format == "connectivity":
        dataset = import_connectivity_folder(
            args.input, args.phenotypes, values=args.fc_values, vector_diagonal=args.vector_diagonal,
            pattern=args.pattern or "*", mat_key=args.mat_key, **matching)
    else:
        dataset = import_timeseries_folder(
            args.input, args.phenotypes, pattern=args.pattern or "*", mat_key=args.mat_key,
            transpose=args.transpose, censored_volumes=args.censored_volumes, header=args.header, **matching)
    print(f"imported {len(dataset)} scans of {len(set(dataset['subject_id']))} subjects", file=sys.stderr)
    if "censored_volumes" in dataset.column_names:
        print(censored_summary(dataset), file=sys.stderr)
    warn_class_variants(dataset)  # ADHD / adhd / Adhd: one warning per column with the --class_aliases to merge them
    # the processor's window and FC rules (lcm_hf.processing_lcm.LcmProcessor), as training and prediction use them
    processor = LcmProcessor(num_rois=num_rois_of(dataset), window_size=args.window_size or None,
                             window_stride=args.window_stride, short_series=args.short_series,
                             fisher_z=args.fisher_z) if len(dataset) else None
    if args.window_size and processor is not None:
        dataset = expand_windows(dataset, processor)
    if len(dataset) == 0:
        raise LcmInputError(f"{args.input}: expected rows to publish, got none (no matched scan"
                            f"{' with a full window of --window-size ' + str(args.window_size) if args.window_size else ''}"
                            "): nothing written")
    if args.connectivity:
        dataset = add_connectivity(dataset, processor)
    if args.split_column and args.split_column in dataset.column_names:
        if args.test_size > 0 or args.validation_size > 0:
            parser.error(f"the data has a {args.split_column!r} column (splits used as given): drop --test-size/"
                         "--validation-size, or pass --split-column '' to ignore it")
        dataset = split_by_column(dataset, args.split_column)
        print(f"splits from column {args.split_column!r}: {', '.join(dataset)}", file=sys.stderr)
    elif args.test_size > 0:
        stratify = args.stratify_by
        if stratify is None:
            stratify = default_stratify_column(dataset)
            print(f"splits stratified by {stratify!r} (the first categorical phenotype column; --stratify-by "
                  "COLUMN for another, --stratify-by '' for none)" if stratify else
                  "splits not stratified (no categorical phenotype column; --stratify-by COLUMN)", file=sys.stderr)
        dataset = grouped_split(dataset, args.test_size, args.validation_size, stratify_by=stratify or None,
                                seed=args.seed)
        if stratify:
            print("subjects per class of " + repr(stratify) + ": " + "; ".join(
                f"{name} {class_counts(part, stratify)}" for name, part in dataset.items()), file=sys.stderr)
    else:
        dataset = DatasetDict({"train": dataset})
    folder = publish_dataset(dataset, args.output, name=args.name, description=args.description,
                             max_rows_per_shard=args.max_rows_per_shard, overwrite=args.overwrite,
                             inputs=inputs)
    print(f"wrote {folder} ({', '.join(f'{k}: {len(v)}' for k, v in dataset.items())})")
    return 0


if __name__ == "__main__":
    from lcm_hf.console import run_main

    sys.exit(run_main(main))
