"""Cross-attention maps and readout-layer histograms of a trained LCM on a connectome dataset.

    python modeling/attention_maps.py --model runs/demo/finetuned-semi_supervised --demo-dataset ppmi_like \
        --output-dir runs/demo/attention
    python modeling/attention_maps.py --model MODEL_DIR --dataset DATA_DIR --roi-names aal116.csv --output-dir OUT

Writes heatmaps (PNG + PDF) of every BEI class token's mean cross-attention over the ROIs at its readout
layer (per class, class-vs-rest contrast, all samples), per-layer heatmaps, glass-brain marker plots of
the top ROIs when ROI coordinates are given (``--roi-names`` CSV with x, y, z columns, or
``--roi-coords``), the readout-layer histogram per BEI, ``attention_maps.csv`` and ``top_rois.csv``.
ROI coordinates are never downloaded: give the ones of your atlas (MNI mm); a model whose processor names a
coordinate atlas nilearn ships (``power_2011``, ``dosenbach_2010``, ``seitzman_2018``) needs none.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def parse_args(argv=None):
    from lcm_hf.console import ArgumentParser, add_console_arguments

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_console_arguments(parser)
    parser.add_argument("--model", required=True, help="save_pretrained folder of LcmForBeiPrediction")
    parser.add_argument("--processor", default=None, help="LcmProcessor folder (default: --model)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a connectome dataset: save_to_disk folder or parquet folder/file")
    source.add_argument("--demo-dataset", help="a simulated demo-cohort dataset name, e.g. ppmi_like")
    parser.add_argument("--split", default="train", help="split of --dataset (parquet folders)")
    parser.add_argument("--demo-subjects", type=int, default=None, help="subjects of the demo dataset")
    parser.add_argument("--demo-seed", type=int, default=0)
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--roi-names", default=None,
                        help="ROI names: .txt (one per line) or .csv/.tsv with a name/label column (+ x, y, z)")
    parser.add_argument("--roi-coords", default=None, help=".csv/.tsv/.txt with x, y, z per ROI (MNI mm)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--formats", nargs="+", default=["png", "pdf"])
    parser.add_argument("--no-per-layer", action="store_true", help="skip the per-layer heatmaps")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np  # after parsing: --help / --version need neither numpy nor torch

    from lcm_hf import LcmForBeiPrediction
    from lcm_hf.analysis.attention import collect_cross_attention, encode_connectome_dataset, top_rois
    from lcm_hf.analysis.plots import read_roi_table, write_attention_report
    from lcm_hf.data import load_connectome_dataset
    from lcm_hf.data.atlases import atlas_coordinates, is_sphere_atlas
    from lcm_hf.demo import demo_roi_names, make_demo_cohort
    from lcm_hf.processing_lcm import LcmProcessor

    model = LcmForBeiPrediction.from_pretrained(args.model).eval()
    processor_dir = args.processor or args.model
    if (Path(processor_dir) / "preprocessor_config.json").is_file():
        processor = LcmProcessor.from_pretrained(processor_dir)
    else:
        processor = LcmProcessor(vocabulary=model.config.beis, num_rois=model.config.num_rois)
    try:
        roi_names, coords = read_roi_table(args.roi_names, args.roi_coords, model.config.num_rois)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if coords is None and is_sphere_atlas(processor.atlas):  # a coordinate atlas nilearn ships: no --roi-coords
        atlas_coords, atlas_labels = atlas_coordinates(processor.atlas)
        if len(atlas_coords) == model.config.num_rois:
            coords, roi_names = atlas_coords, roi_names or processor.roi_labels or atlas_labels
    if roi_names is None and args.demo_dataset:
        roi_names = demo_roi_names()
    if args.demo_dataset:
        n_subjects = {args.demo_dataset: args.demo_subjects} if args.demo_subjects else None
        dataset = make_demo_cohort(seed=args.demo_seed, n_subjects=n_subjects,
                                   datasets=(args.demo_dataset,))[args.demo_dataset]
    else:
        dataset = load_connectome_dataset(args.dataset, split=args.split)
    connectivity, labels = encode_connectome_dataset(dataset, processor, args.batch_size, args.max_samples)
    summary = collect_cross_attention(model, connectivity, labels, roi_names=roi_names, batch_size=args.batch_size)
    written = write_attention_report(summary, args.output_dir, roi_coords=coords, top_k=args.top_k,
                                     formats=args.formats, per_layer=not args.no_per_layer)
    report = {"num_samples": summary.num_samples, "readout_policy": summary.readout_policy,
              "readout_layer": summary.readout_layer,
              "layer_counts": {k: v.tolist() for k, v in summary.layer_counts.items()},
              "class_counts": {k: v.tolist() for k, v in summary.class_counts.items()}, **written}
    Path(args.output_dir, "summary.json").write_text(json.dumps(report, indent=2))
    print(f"{summary.num_samples} samples; readout layers {summary.readout_layer}")
    for bei in summary.beis:
        if bei["kind"] != "categorical":
            continue
        for row, class_name in enumerate(bei["classes"]):
            contrast = summary.maps(bei["name"], "contrast")[row]
            if np.isfinite(contrast).any():
                best = ", ".join(f"{n} ({v:+.4f})" for n, v in top_rois(contrast, summary.roi_names, 5, absolute=True))
                print(f"  {bei['name']}={class_name} vs rest, top ROIs: {best}")
    print(f"wrote {len(written['figures'])} figures and {len(written['tables'])} tables to {args.output_dir}")
    return 0


if __name__ == "__main__":
    from lcm_hf.console import run_main

    raise SystemExit(run_main(main))
