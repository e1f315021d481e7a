"""Raw files -> a published connectome dataset (parquet shards + dataset card).

Importers (``--format``):

  folder  A folder of per-subject ROI time-series files (.1D, .tsv, .csv, .txt, .npy, .mat;
          rows = time points, columns = ROIs; '#' header lines, a header row of ROI names and a
          first column of labels are skipped) matched to rows of a phenotype CSV/TSV
          (--phenotypes) by --id-column: the BIDS-like 'sub-XX' label of
          'sub-XX[_ses-YY][_task-ZZ][_run-NN]*' names (with or without 'sub-' / leading zeros),
          else the file stem, else an id appearing as a token of the name. ses/task/run become
          'session'/'task'/'run' columns. '.mat' files: the array under --mat-key.
  abide   ABIDE preprocessed connectomes as nilearn's fetch_abide_pcp stores them
          (ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_rois_<atlas>.1D) with
          Phenotypic_V1_0b_preprocessed1.csv (found in or above the folder, or --phenotypes);
          DX_GROUP -> diagnosis (autism/control), SEX -> sex (M/F), AGE_AT_SCAN -> age.

Every file must have the ROI count of the first one. Optional steps: --window-size cuts
windows (one row per window, subject_id kept), --connectivity stores Pearson FC instead of
time series, --test-size/--validation-size make subject-grouped splits.

Example::

    python processing/build_dataset.py my_tsvs/ --phenotypes my_tsvs/phenotypes.csv \\
        --id-column participant_id --output my_dataset
    python -c "import datasets; print(datasets.load_dataset('my_dataset'))"
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build_dataset.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="folder of time-series files (or an ABIDE_pcp folder with --format abide)")
    parser.add_argument("--output", "-o", required=True, help="output folder for the published dataset")
    parser.add_argument("--format", choices=("folder", "abide"), default="folder", help="input layout (default folder)")
    parser.add_argument("--phenotypes", help="phenotype CSV/TSV (required for --format folder to carry labels)")
    parser.add_argument("--id-column", default="subject_id", help="phenotype column matched to file names")
    parser.add_argument("--site-column", help="phenotype column holding the site (default: site / SITE_ID)")
    parser.add_argument("--columns", nargs="*", help="phenotype columns to keep (default: all)")
    parser.add_argument("--dataset-name", help="value of the 'dataset' column (default: the folder name)")
    parser.add_argument("--pattern", default="*", help="glob for time-series file names (default '*')")
    parser.add_argument("--mat-key", help="variable holding the time series in .mat files")
    parser.add_argument("--transpose", action="store_true", help="files are ROI x time")
    parser.add_argument("--atlas", default="aal", help="ABIDE atlas suffix (default aal)")
    parser.add_argument("--unmatched", choices=("warn", "error", "keep"), default="warn",
                        help="files without a phenotype row: skip with a warning, fail, or keep")
    parser.add_argument("--window-size", type=int, help="cut time series into windows of this many TRs")
    parser.add_argument("--window-stride", type=int, help="window step (default: the window size)")
    parser.add_argument("--drop-last", action="store_true", help="drop a last window shorter than the size")
    parser.add_argument("--connectivity", action="store_true", help="store Pearson FC instead of time series")
    parser.add_argument("--fisher-z", action="store_true", help="Fisher z-transform the stored FC")
    parser.add_argument("--test-size", type=float, default=0.0, help="fraction of subjects in a test split")
    parser.add_argument("--validation-size", type=float, default=0.0, help="fraction of subjects in a validation split")
    parser.add_argument("--stratify-by", help="column to stratify the splits on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows-per-shard", type=int, default=2000)
    parser.add_argument("--name", help="dataset card title")
    parser.add_argument("--description", default="", help="dataset card text")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from datasets import DatasetDict

    from lcm_hf.data import (
        add_connectivity,
        expand_windows,
        grouped_split,
        import_abide_pcp,
        import_timeseries_folder,
        publish_dataset,
    )

    if args.format == "abide":
        dataset = import_abide_pcp(args.input, args.phenotypes, atlas=args.atlas,
                                   dataset_name=args.dataset_name or "abide", progress=True)
    else:
        dataset = import_timeseries_folder(
            args.input, args.phenotypes, id_column=args.id_column, dataset_name=args.dataset_name,
            site_column=args.site_column, phenotype_columns=args.columns, pattern=args.pattern,
            mat_key=args.mat_key, transpose=args.transpose, unmatched=args.unmatched, progress=True)
    print(f"imported {len(dataset)} scans of {len(set(dataset['subject_id']))} subjects", file=sys.stderr)
    if args.window_size:
        dataset = expand_windows(dataset, args.window_size, args.window_stride, drop_last=args.drop_last)
    if args.connectivity:
        dataset = add_connectivity(dataset, fisher=args.fisher_z)
    if args.test_size > 0:
        dataset = grouped_split(dataset, args.test_size, args.validation_size, stratify_by=args.stratify_by,
                                seed=args.seed)
    else:
        dataset = DatasetDict({"train": dataset})
    folder = publish_dataset(dataset, args.output, name=args.name, description=args.description,
                             max_rows_per_shard=args.max_rows_per_shard, overwrite=args.overwrite)
    print(f"wrote {folder} ({', '.join(f'{k}: {len(v)}' for k, v in dataset.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
