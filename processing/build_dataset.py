"""Raw files -> a published connectome dataset (parquet shards + dataset card).

Importers (``--format``):

  folder  A folder of per-subject ROI time-series files (.1D, .tsv, .csv, .txt, .npy, .mat;
          rows = time points, columns = ROIs; '#' header lines, a header row of ROI names and a
          first column of labels are skipped) matched to rows of a phenotype CSV/TSV
          (--phenotypes) by --id-column: the BIDS-like 'sub-XX' label of
          'sub-XX[_ses-YY][_task-ZZ][_run-NN]*' names (with or without 'sub-' / leading zeros),
          else the file stem, else an id appearing as a token of the name. ses/task/run become
          'session'/'task'/'run' columns. '.mat' files: the array under --mat-key.
  nifti   A folder of preprocessed 4-D NIfTI scans ('*.nii' / '*.nii.gz', e.g.
          'sub-XX[_ses-YY][_task-ZZ][_run-NN]_bold.nii.gz'), parcellated with the labels atlas
          image --atlas-image through nilearn's NiftiLabelsMasker (the atlas is resampled to each
          scan; --t-r, --standardize, --detrend, --low-pass/--high-pass clean the signal) and matched
          to --phenotypes rows as for 'folder'. --pattern defaults to '*.nii*' here.
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
    python processing/build_dataset.py my_scans/ --format nifti --atlas-image atlas.nii.gz \\
        --phenotypes my_scans/phenotypes.csv --t-r 2.0 --output my_nifti_dataset
    python -c "import datasets; print(datasets.load_dataset('my_dataset'))"
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build_dataset.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="folder of time-series files (NIfTI scans with --format nifti, "
                                      "an ABIDE_pcp folder with --format abide)")
    parser.add_argument("--output", "-o", required=True, help="output folder for the published dataset")
    parser.add_argument("--format", choices=("folder", "nifti", "abide"), default="folder", help="input layout (default folder)")
    parser.add_argument("--phenotypes", help="phenotype CSV/TSV (required for --format folder to carry labels)")
    parser.add_argument("--id-column", default="subject_id", help="phenotype column matched to file names")
    parser.add_argument("--site-column", help="phenotype column holding the site (default: site / SITE_ID)")
    parser.add_argument("--columns", nargs="*", help="phenotype columns to keep (default: all)")
    parser.add_argument("--dataset-name", help="value of the 'dataset' column (default: the folder name)")
    parser.add_argument("--pattern", help="glob for file names (default '*', '*.nii*' with --format nifti)")
    parser.add_argument("--mat-key", help="variable holding the time series in .mat files")
    parser.add_argument("--transpose", action="store_true", help="files are ROI x time")
    parser.add_argument("--atlas", default="aal", help="ABIDE atlas suffix (default aal)")
    parser.add_argument("--atlas-image", help="3-D labels atlas NIfTI (required for --format nifti)")
    parser.add_argument("--t-r", type=float, help="repetition time in seconds (--format nifti; needed for filtering)")
    parser.add_argument("--standardize", choices=("zscore_sample", "psc"),
                        help="--format nifti: standardize each region's signal (default: keep the scale)")
    parser.add_argument("--detrend", action="store_true", help="--format nifti: remove linear trends")
    parser.add_argument("--low-pass", type=float, help="--format nifti: low-pass cutoff in Hz (needs --t-r)")
    parser.add_argument("--high-pass", type=float, help="--format nifti: high-pass cutoff in Hz (needs --t-r)")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.format == "nifti" and not args.atlas_image:
        parser.error("--format nifti needs --atlas-image PATH (a 3-D labels atlas)")
    from datasets import DatasetDict

    from lcm_hf.data import (
        add_connectivity,
        expand_windows,
        grouped_split,
        import_abide_pcp,
        import_nifti_folder,
        import_timeseries_folder,
        publish_dataset,
    )

    if args.format == "abide":
        dataset = import_abide_pcp(args.input, args.phenotypes, atlas=args.atlas,
                                   dataset_name=args.dataset_name or "abide", progress=True)
    elif args.format == "nifti":
        dataset = import_nifti_folder(
            args.input, args.atlas_image, args.phenotypes, id_column=args.id_column, dataset_name=args.dataset_name,
            site_column=args.site_column, phenotype_columns=args.columns, pattern=args.pattern or "*.nii*",
            t_r=args.t_r, standardize=args.standardize, detrend=args.detrend, low_pass=args.low_pass,
            high_pass=args.high_pass, unmatched=args.unmatched, progress=True)
    else:
        dataset = import_timeseries_folder(
            args.input, args.phenotypes, id_column=args.id_column, dataset_name=args.dataset_name,
            site_column=args.site_column, phenotype_columns=args.columns, pattern=args.pattern or "*",
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
