"""Model scale: the parameter / FLOP table of the presets, and a small-scale scaling study.

    python modeling/model_scale.py                  # preset table + scaling study (a few minutes on 2 cores)
    python modeling/model_scale.py --quick          # tiny study (under a minute)
    python modeling/model_scale.py --table-only     # just the preset table

1. Preset table: parameters of `LcmConfig.from_preset(name)` (N=116, E=2048, 8 heads, FFN 768, and
   P=7 BEI tokens: 4 dataset classes + sex (2) + age (1)) against the reference code's counts, and the
   forward FLOPs per sample (2 x multiply-accumulates of every matmul; the training step is about 3x).
2. Scaling study, a small-scale version of the paper's Fig. 2 on the SIMULATED demo cohort: training
   loss after a fixed budget of steps vs parameter count, for LCM decoders of growing size and for an
   MLP-head baseline with the same parameter count (an MLP on the upper triangle of the FC matrix,
   as deep as the decoder, width solved to match the decoder's parameter count). Both use the same
   multitask BEI loss, optimiser, batches and steps; the decoder is read out with the mean over
   layers (the "momentum" stage) so that its training loss is not lowered by the "max" policy's
   peeking at the labels. Writes ``scaling.png``, ``scaling.csv``, ``scaling.md`` and ``presets.csv``.

Numbers from the demo cohort say how the two heads optimise at toy scale on simulated data; they are
not a reproduction of the paper's result at 100M+ parameters. The logic lives in `lcm_hf.analysis.scaling`.
"""

from __future__ import annotations

from pathlib import Path

from lcm_hf.console import ArgumentParser, add_console_arguments


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_console_arguments(parser)
    parser.add_argument("--output-dir", default="runs/model_scale")
    parser.add_argument("--quick", action="store_true", help="three small sizes, few subjects and steps (< 1 min)")
    parser.add_argument("--table-only", action="store_true", help="print the preset table and stop")
    parser.add_argument("--subjects", type=int, default=None, help="subjects per demo dataset (default 120; quick 40)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model (default 120; quick 25)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from lcm_hf.analysis.scaling import preset_table, scaling_study, write_scaling_report
    from lcm_hf.console import configure_threads
    from lcm_hf.demo import demo_training_data

    configure_threads(flag=None)  # the scripts' one thread rule (lcm_hf.console), said in one line
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    table = preset_table()
    print("Presets (N=116, E=2048, 8 heads, FFN 768, P=7 BEI tokens):")
    print(table.to_string(index=False))
    table.to_csv(output / "presets.csv", index=False)
    if args.table_only:
        return 0

    subjects = args.subjects or (40 if args.quick else 120)
    steps = args.steps or (25 if args.quick else 120)
    sizes = [(16, 1), (32, 2), (64, 2)] if args.quick else [(16, 1), (32, 2), (64, 2), (96, 3), (128, 4)]
    fc, labels, beis = demo_training_data(subjects, seed=args.seed)
    print(f"\nScaling study on the SIMULATED demo cohort: {len(fc)} scans, {steps} steps x batch {args.batch_size}")
    study, curves = scaling_study(fc, labels, beis, sizes, steps, args.batch_size, args.lr, args.seed)
    write_scaling_report(
        study, curves, output,
        header=f"Scaling study on the simulated demo cohort ({len(fc)} scans, {steps} steps, "
               f"batch {args.batch_size}, AdamW lr {args.lr}).",
        title=f"Scaling on the simulated demo cohort ({len(fc)} scans, {steps} steps): LCM decoder vs MLP head",
    )
    print(study.to_string(index=False))
    print(f"wrote {output / 'scaling.png'}, scaling.csv, scaling.md, presets.csv")
    return 0


if __name__ == "__main__":
    from lcm_hf.console import run_main

    raise SystemExit(run_main(main))
