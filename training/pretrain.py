"""Multitask LCM pretraining over several connectome datasets.

    python training/pretrain.py --dataset_dirs data/site_a data/site_b \
        --categorical_columns sex diagnosis --continuous_columns age --output_dir runs/pretrain
    python training/pretrain.py --demo --output_dir runs/pretrain        # the SIMULATED demo cohort
    python training/pretrain.py config.yaml                              # every option from a JSON/YAML file
    accelerate launch training/pretrain.py ...                           # one process
    accelerate launch --config_file training/accelerate_configs/multi_gpu.yaml training/pretrain.py ...

Options: `lcm_hf.training.arguments` (`--help` lists them). Datasets are folders written by
`processing/build_dataset.py` (published splits are used as given). Writes the model + processor,
`results.json` (test metrics per BEI, per layer, per dataset, window and subject level) and TensorBoard logs
to `--output_dir`.
"""

import json

from lcm_hf.training.arguments import (
    LcmDataArguments,
    LcmModelArguments,
    LcmTrainingArguments,
    parse_arguments,
)
from lcm_hf.training.data import load_connectome_datasets
from lcm_hf.training.recipes import pretrain


def load_datasets(data_args, stage):
    """The datasets of --dataset_dirs, or the simulated cohort with --demo."""
    if data_args.demo:
        from lcm_hf.demo import apply_demo_defaults, demo_datasets

        datasets = demo_datasets(stage, data_args)
        apply_demo_defaults(data_args, datasets)
        return datasets
    if not data_args.dataset_dirs:
        raise SystemExit(
            "error: no data: pass --dataset_dirs FOLDER [FOLDER ...] (written by processing/build_dataset.py), "
            "or --demo for the simulated demo cohort"
        )
    return load_connectome_datasets(data_args.dataset_dirs)


def main(argv=None):
    data_args, model_args, training_args = parse_arguments(
        (LcmDataArguments, LcmModelArguments, LcmTrainingArguments), argv
    )
    datasets = load_datasets(data_args, "pretrain")
    results = pretrain(datasets, data_args, model_args, training_args)
    if training_args.should_log:
        summary = {
            k: v for k, v in results["test_metrics"].items() if "/layer_" not in k and "dataset/" not in k
        }
        print(json.dumps({"readout_layers": results["readout_layers"], "test": summary}, default=str))
    return results


if __name__ == "__main__":
    main()
