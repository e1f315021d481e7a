"""Export a trained LCM as a complete Hugging Face model repository, and optionally push it.

    python modeling/export_to_hub.py --model runs/demo/finetuned-semi_supervised --output hub/lcm-demo \
        --model-name lcm-demo --datasets simulated-demo-cohort \
        --eval-metrics runs/demo/finetuned-semi_supervised/results.json
    python modeling/export_to_hub.py ... --push --repo-id user/lcm-demo [--token TOKEN | HF_TOKEN=...]

The folder holds config.json (with auto_map and custom_pipelines), model.safetensors, the remote-code files
(the pipeline included), the processor config (the preprocessing contract) + BEI vocabulary and a model card
(README.md). It loads without lcm_hf installed:
``pipeline("phenotype-prediction", model=folder, trust_remote_code=True)``,
``AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True)`` and
``AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)``. Nothing is uploaded
without ``--push``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def parse_args(argv=None):
    from lcm_hf.console import ArgumentParser, add_console_arguments

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_console_arguments(parser)
    parser.add_argument("--model", required=True, help="a save_pretrained folder of LcmForBeiPrediction")
    parser.add_argument("--processor", default=None,
                        help="folder of the LcmProcessor (default: --model when it holds preprocessor_config.json)")
    parser.add_argument("--output", required=True, help="the repository folder to write")
    parser.add_argument("--model-name", default=None, help="title of the model card (default: the output folder name)")
    parser.add_argument("--license", default="apache-2.0")
    parser.add_argument("--datasets", nargs="*", default=[], help="dataset ids for the card metadata")
    parser.add_argument("--tags", nargs="*", default=[])
    parser.add_argument("--eval-metrics", default=None,
                        help="JSON: trainer metrics (eval_{bei}/{metric}) or rows {name: {metric: value}}")
    parser.add_argument("--subject-level", action="store_true", help="report subject-level trainer metrics")
    parser.add_argument("--eval-dataset", default=None, help="what the evaluation was run on (one line)")
    parser.add_argument("--training-data", default=None, help="text (or a path to a .md file) describing the data")
    parser.add_argument("--training-procedure", default=None, help="text (or a path to a .md file)")
    parser.add_argument("--push", action="store_true", help="upload the folder with huggingface_hub")
    parser.add_argument("--repo-id", default=None, help="Hub repository id for --push, e.g. user/lcm-demo")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the cached login)")
    parser.add_argument("--private", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from lcm_hf import LcmForBeiPrediction  # after parsing: --help / --version need no torch
    from lcm_hf.hub import export_model_repository, load_eval_results, push_model_repository, text_or_file
    from lcm_hf.processing_lcm import LcmProcessor

    if args.push and not args.repo_id:
        print("error: --push needs --repo-id", file=sys.stderr)
        return 2
    model = LcmForBeiPrediction.from_pretrained(args.model).eval()
    processor_dir = args.processor or (args.model if (Path(args.model) / "preprocessor_config.json").is_file() else None)
    if processor_dir is not None:
        processor = LcmProcessor.from_pretrained(processor_dir)  # its BEIs are checked against the model config
    else:
        print("warning: no processor found: exporting one built from the model config (FC of whole series; no atlas, "
              "ROI labels or windows recorded)", file=sys.stderr)
        processor = LcmProcessor(vocabulary=model.config.beis, num_rois=model.config.num_rois)

    eval_results = None
    if args.eval_metrics:
        eval_results = load_eval_results(args.eval_metrics, model.config.beis, subject_level=args.subject_level)

    info = {
        "model_name": args.model_name or Path(args.output).name,
        "license": args.license,
        "datasets": args.datasets,
        "tags": args.tags,
        "eval_results": eval_results,
        "eval_dataset": args.eval_dataset,
        "training_data": text_or_file(args.training_data),
        "training_procedure": text_or_file(args.training_procedure),
        "repo_id": args.repo_id,
    }
    files = export_model_repository(model, args.output, processor=processor, model_card_info=info)
    print(f"wrote {args.output}: {', '.join(files)}")
    if args.push:
        url = push_model_repository(args.output, args.repo_id, token=args.token, private=args.private)
        print(f"pushed to {url}")
    return 0


if __name__ == "__main__":
    from lcm_hf.console import run_main

    raise SystemExit(run_main(main))
