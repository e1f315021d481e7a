"""The `lcm-hf` console command.

- ``lcm-hf demo [--output-dir runs/demo] [--quick]``: pretrain -> finetune -> report on the simulated cohort.
- ``lcm-hf predict --model DIR --timeseries FILE...``: per-BEI predictions for ROI time-series files
  (.npy, .mat, or text tables .1D/.txt/.tsv/.csv with one row per TR).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _demo(args) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo simulates its data: nothing to download
    from .demo import DemoSettings, run_demo

    settings = DemoSettings(output_dir=args.output_dir, seed=args.seed, num_threads=args.num_threads)
    if args.quick:  # a smoke-size run (tests, CI): few subjects and epochs
        settings.demo_subjects, settings.pretrain_epochs, settings.finetune_epochs = 40, 3, 3
        settings.momentum_epochs, settings.hidden_size, settings.num_hidden_layers = 1, 32, 2
    for name in ("pretrain_epochs", "finetune_epochs", "momentum_epochs"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    run_demo(settings)
    return 0


def read_timeseries(path: str):
    """A (T, N) float32 array from .npy, .mat or a text table (.1D/.txt/.tsv/.csv), via
    `lcm_hf.data.readers.read_timeseries_file`."""
    from .data.readers import read_timeseries_file

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no time-series file at {path!r}")
    return read_timeseries_file(path)


def _predict(args) -> int:
    import torch

    from .modeling_lcm import LcmForBeiPrediction
    from .processing_lcm import LcmProcessor

    model = LcmForBeiPrediction.from_pretrained(args.model).eval()
    processor = LcmProcessor.from_pretrained(args.model)
    series = [read_timeseries(path) for path in args.timeseries]
    for path, array in zip(args.timeseries, series):
        if array.shape[1] != model.config.num_rois:
            raise SystemExit(
                f"error: {path}: expected {model.config.num_rois} ROI columns (the model's num_rois), got {array.shape[1]}"
            )
    batch = processor(timeseries=series, return_tensors="pt")
    with torch.no_grad():
        outputs = model(connectivity=batch["connectivity"])
    for path, prediction in zip(args.timeseries, processor.post_process(outputs)):
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lcm-hf", description="Large Connectome Model (LCM) tools")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="pretrain -> finetune -> report on the simulated demo cohort")
    demo.add_argument("--output-dir", default="runs/demo")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="a smoke-size run (seconds), for tests")
    demo.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (default 1)")
    demo.add_argument("--pretrain-epochs", type=int, default=None)
    demo.add_argument("--finetune-epochs", type=int, default=None)
    demo.add_argument("--momentum-epochs", type=int, default=None)
    demo.set_defaults(handler=_demo)
    predict = commands.add_parser("predict", help="per-BEI predictions for ROI time-series files")
    predict.add_argument("--model", required=True, help="a folder (or Hub id) with the model and its processor")
    predict.add_argument(
        "--timeseries", nargs="+", required=True, help=".npy / .mat / .1D / .txt / .tsv / .csv files (T x N)"
    )
    predict.add_argument("--json", action="store_true", help="one JSON line per file")
    predict.set_defaults(handler=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
