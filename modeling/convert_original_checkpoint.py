"""Convert a checkpoint of the paper's reference code (two torch state dicts) to a `save_pretrained` folder.

    python modeling/convert_original_checkpoint.py --backbone BB.pt --head HEAD.pt --beis BEIS.json --output DIR

BEIS.json is the `config.beis` list (DESIGN.md section 6) in the reference token order: the dataset
classes, then (for a finetuned head) the finetune classes, then sex with two classes, then age as
continuous, e.g.

    [{"name": "diagnosis", "kind": "categorical", "classes": ["control", "autism"]},
     {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
     {"name": "age", "kind": "continuous"}]

The files are read with ``torch.load(weights_only=True)``; shapes are checked against the vocabulary
and the inferred config, and a mismatch stops the conversion with the key and both shapes.
"""

from __future__ import annotations

import json
import sys

from lcm_hf.console import ArgumentParser, add_console_arguments

READOUT_POLICIES = ("max", "best_layer", "mean", "last")  # lcm_hf.configuration_lcm's (checked in main)


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_console_arguments(parser)
    parser.add_argument("--backbone", required=True, help="reference backbone state dict (lin.0.*, lin.1.*)")
    parser.add_argument("--head", required=True, help="reference head state dict (object_query, decoder.*, class_embed)")
    parser.add_argument("--beis", required=True, help="JSON file: the config.beis list in reference token order")
    parser.add_argument("--output", required=True, help="output folder (written with save_pretrained)")
    parser.add_argument("--num-heads", type=int, default=8, help="attention heads of the reference model (default 8)")
    parser.add_argument("--readout-policy", default="max", choices=READOUT_POLICIES)
    parser.add_argument("--no-strict", action="store_true", help="ignore keys the converter does not map")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from lcm_hf.configuration_lcm import READOUT_POLICIES as policies
    from lcm_hf.conversion import CheckpointConversionError, convert_reference_checkpoint, load_bei_list

    assert set(READOUT_POLICIES) == set(policies), "keep the --readout-policy choices in step with the config"
    try:
        beis = load_bei_list(args.beis)  # the list, or a config.json-like {"beis": [...]}
    except (OSError, json.JSONDecodeError) as error:
        print(f"error: cannot read the BEI list from {args.beis}: {error}", file=sys.stderr)
        return 2
    try:
        model = convert_reference_checkpoint(
            args.backbone,
            args.head,
            beis,
            num_attention_heads=args.num_heads,
            strict=not args.no_strict,
            readout_policy=args.readout_policy,
        )
    except (CheckpointConversionError, ValueError, TypeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model.save_pretrained(args.output)
    config = model.config
    print(
        f"converted: N={config.num_rois} E={config.hidden_size} L={config.num_hidden_layers} "
        f"heads={config.num_attention_heads} FFN={config.intermediate_size} P={config.num_bei_tokens} "
        f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters) -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    from lcm_hf.console import run_main

    raise SystemExit(run_main(main))
