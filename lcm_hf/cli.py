"""The `lcm-hf` console command.

- ``lcm-hf demo [--output-dir runs/demo] [--quick]``: pretrain -> finetune -> report on the simulated cohort.
- ``lcm-hf predict --model DIR --timeseries FILE... [--json]``: one prediction per file (subject) by the model's
  preprocessing contract (its windows averaged, probabilities calibrated by the model's temperatures), through
  the "phenotype-prediction" pipeline; files (.npy, .mat, or text tables .1D/.txt/.tsv/.csv with one row per TR)
  are read by the core's one reader (`lcm_hf.timeseries_files_lcm.read_timeseries`).
- ``lcm-hf embed --model DIR --timeseries FILE... --output F.parquet``: per-subject embeddings.

Censored (scrubbed) volumes in the files (rows of empty, ``NaN``, ``n/a`` or ``NA`` cells) are refused, naming the
file and rows, unless ``--censored-volumes drop``: then no window holds one (the reader's and the window rule's policy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points

from .errors_lcm import LcmInputError

COMMANDS_GROUP = "lcm_hf.commands"  # entry points adding subcommands: callables taking the subparsers


def check_model_argument(model: str) -> None:
    """Refuse a `--model` that is neither a folder nor a Hub id that could be fetched: offline, or a path-like
    name (a typo of a local folder), it must be an existing folder (instead of the Hub's "couldn't connect")."""
    if os.path.isdir(model):
        check_model_folder(model)
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    path_like = model.startswith((".", "/", "~")) or model.count("/") != 1
    if offline or path_like:
        raise LcmInputError(f"--model: expected a model folder (or a Hub id online), got no folder at {model!r}")


def check_model_folder(model: str, flag: str = "--model") -> None:
    """Refuse a folder that holds no model (no ``config.json``), saying what it is instead: a dataset folder
    (build_dataset.py output) or a training run without a saved model."""
    if any(os.path.isfile(os.path.join(model, name)) for name in ("config.json", "adapter_config.json")):
        return
    from .atomic import looks_like_dataset

    if looks_like_dataset(model):
        raise LcmInputError(f"{flag}: expected a model folder (config.json + model.safetensors, the --output_dir of "
                            f"training/pretrain.py or finetune.py), got {model!r}, which is a dataset folder "
                            "(build_dataset.py output)")
    checkpoints = sorted(name for name in os.listdir(model) if name.startswith("checkpoint-"))
    hint = f"; it holds {checkpoints[-1]}: pass {os.path.join(model, checkpoints[-1])}" if checkpoints else ""
    raise LcmInputError(f"{flag}: expected a model folder (config.json + model.safetensors, the --output_dir of "
                        f"training/pretrain.py or finetune.py), got {model!r}, which has no config.json{hint}")


def _predict(args) -> int:
    from .pipeline_lcm import load_phenotype_pipeline, read_input

    try:
        inputs = [read_input(path, args.censored_volumes, header=args.header)
                  for path in args.timeseries]  # a bad file fails before the model loads
        check_model_argument(args.model)
        predict = load_phenotype_pipeline(args.model, device=args.device)
        num_rois = predict.model.config.num_rois
        for path, item in zip(args.timeseries, inputs):
            if item["timeseries"].shape[1] != num_rois:
                raise LcmInputError(
                    f"{path}: expected {num_rois} ROI columns (the model's num_rois), got {item['timeseries'].shape[1]}"
                )
        predictions = predict(inputs, return_windows=args.windows)
    except (LcmInputError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    for path, prediction in zip(args.timeseries, predictions):
        if args.json:
            print(json.dumps({"file": path, "predictions": prediction}))
            continue
        print(path)
        for name, value in prediction.items():
            if "label" in value:
                print(f"  {name}: {value['label']} (p={value['score']:.3f})")
            else:
                print(f"  {name}: {value['value']:.3f}")
    return 0


def _embed(args) -> int:
    from .embeddings import embed_files

    if args.subject_ids is not None and len(args.subject_ids) != len(args.timeseries):
        raise SystemExit(f"error: --subject-ids: expected one per file ({len(args.timeseries)}), got {len(args.subject_ids)}")
    try:
        from .atomic import check_output_file

        # never over an input (a series file, the model), whatever --overwrite says; writable, before the model loads
        check_output_file(args.output, inputs=[*args.timeseries, args.model], overwrite=args.overwrite,
                          flag="--output")
        check_model_argument(args.model)
        path = embed_files(args.model, args.timeseries, args.output, subject_ids=args.subject_ids,
                           overwrite=args.overwrite, device=args.device, censored_volumes=args.censored_volumes,
                           header=args.header)
    except (LcmInputError, FileNotFoundError, FileExistsError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"wrote {path}")
    return 0


def add_censored_argument(parser) -> None:
    """``--censored-volumes refuse|drop``: the core reader's policy for censored (scrubbed) volumes."""
    from .timeseries_files_lcm import CENSORED_POLICIES

    parser.add_argument("--censored-volumes", choices=CENSORED_POLICIES, default="refuse",
                        help="rows of empty / NaN / n/a / NA cells (scrubbed volumes): refuse the file (default), or "
                             "leave them out (no window holds one; FC of the valid volumes)")


def build_parser() -> argparse.ArgumentParser:
    from .console import ArgumentParser, add_console_arguments, add_header_argument, add_threads_argument

    parser = ArgumentParser(prog="lcm-hf", description="Large Connectome Model (LCM) tools")
    add_console_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    for entry in entry_points(group=COMMANDS_GROUP):  # plug-in subcommands, e.g. `demo` (lcm_hf.demo.cli)
        entry.load()(commands)
    predict = commands.add_parser("predict", help="per-BEI predictions for ROI time-series files")
    predict.add_argument("--model", required=True, help="a folder (or Hub id) with the model and its processor")
    predict.add_argument(
        "--timeseries", nargs="+", required=True, help=".npy / .mat / .1D / .txt / .tsv / .csv files (T x N)"
    )
    predict.add_argument("--json", action="store_true", help="one JSON line per file")
    add_header_argument(predict)
    add_censored_argument(predict)
    predict.add_argument("--windows", action="store_true", help="also each window's prediction (under 'windows')")
    predict.add_argument("--device", default=None, help="torch device (default: the first GPU, else the CPU)")
    add_threads_argument(predict)
    predict.set_defaults(handler=_predict)
    embed = commands.add_parser("embed", help="per-subject embeddings (BEI-token states, pooled FC features)")
    embed.add_argument("--model", required=True, help="a folder (or Hub id) with the model and its processor")
    embed.add_argument(
        "--timeseries", nargs="+", required=True, help=".npy / .mat / .1D / .txt / .tsv / .csv files (T x N)"
    )
    embed.add_argument("--output", required=True, help="the parquet file to write (one row per subject)")
    embed.add_argument("--subject-ids", nargs="+", default=None,
                       help="one per file (default: the BIDS sub- entity, else the file name)")
    embed.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    add_header_argument(embed)
    add_censored_argument(embed)
    embed.add_argument("--device", default=None, help="torch device (default: cpu)")
    add_threads_argument(embed)
    embed.set_defaults(handler=_embed)
    return parser


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run the sub-command; errors propagate (Python callers and tests)."""
    args = build_parser().parse_args(argv)
    if args.command in ("predict", "embed"):  # the one thread rule (the demo sets its own, saying it)
        from .console import configure_threads

        configure_threads(args.num_threads, announce=False, flag="--num-threads")
    return args.handler(args)


def main(argv: list[str] | None = None) -> int:
    """The console entry: with ``argv`` None (the command line) user errors are one line ``error: ...`` with exit
    status 2 (``--debug`` or ``LCM_HF_DEBUG=1``: the traceback); with an ``argv`` list, errors propagate."""
    if argv is not None:
        return run(argv)
    from .console import run_main

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())
