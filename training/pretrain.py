"""Multitask LCM pretraining over several connectome datasets.

    python training/pretrain.py --dataset_dirs data/site_a data/site_b \
        --categorical_columns sex diagnosis --continuous_columns age --output_dir runs/pretrain
    python training/pretrain.py --demo --output_dir runs/pretrain        # the SIMULATED demo cohort
    python training/pretrain.py config.yaml                              # every option from a JSON/YAML file
    python training/pretrain.py ... --resume_from_checkpoint true        # continue after a kill (or PATH)
    accelerate launch training/pretrain.py ...                           # one process
    accelerate launch --config_file training/accelerate_configs/multi_gpu.yaml training/pretrain.py ...

Options: `lcm_hf.training.arguments` (`--help` lists them). Datasets are folders written by
`processing/build_dataset.py` (published splits are used as given). Writes the model + processor,
`results.json` (test metrics per BEI, per layer, per dataset, window and subject level) and TensorBoard logs
to `--output_dir`.

Evaluation: `report.md` in `--output_dir` sets the model beside an FC + logistic regression baseline (ridge for
continuous BEIs) and chance per BEI on the same test subjects, with bootstrap 95% intervals over subjects and
the paired difference (`--baseline false` skips the baseline). `--eval_level auto|scan|subject`: labels that vary
within a subject (task condition, run) are scored per scan, others per subject (auto, said in the report).
`--cv_folds K` runs K subject-grouped folds (`--group_by site` for sites; `--split_seed`, `--stratify_column`)
into `<output_dir>/fold-<k>` and writes `cv_report.md` / `cv_results.json` (per fold, mean +/- sd, and all
out-of-fold predictions pooled with intervals).
"""

import json

from lcm_hf.console import exit_if_version
from lcm_hf.training.script_help import exit_if_help


def main(argv=None):
    exit_if_version(argv, "pretrain.py")
    exit_if_help(argv, "pretrain.py")  # the stored option list: no transformers (lcm_hf.training.script_help)
    from lcm_hf.training.arguments import (  # after --version: the parser needs transformers (seconds)
        SCRIPT_ARGUMENTS,
        parse_arguments,
    )

    data_args, model_args, training_args = parse_arguments(SCRIPT_ARGUMENTS["pretrain.py"], argv)
    from lcm_hf.training.recipes import pretrain
    from lcm_hf.training.runtime import prepare_run, run_recipe

    prepare_run(training_args, data_args)
    from lcm_hf.training.checkpoints import resume_argument

    resume = resume_argument(training_args, data_args)  # --resume_from_checkpoint PATH|true
    if data_args.streaming:  # published parquet shards read as streams (lcm_hf.training.streaming)
        from lcm_hf.training.streaming_recipe import pretrain_streaming

        if data_args.demo or not data_args.dataset_dirs:
            raise SystemExit("error: --streaming true reads published folders: pass --dataset_dirs (not --demo)")
        results = pretrain_streaming(data_args.dataset_dirs, data_args, model_args, training_args, resume)
        if training_args.should_log:
            print(json.dumps({"readout_layers": results["readout_layers"], "steps": training_args.max_steps,
                              "schedule": results["schedule"]}))
        return results
    from lcm_hf.demo import script_datasets  # --demo (the simulated cohort) or --dataset_dirs

    datasets = script_datasets(data_args, "pretrain")
    return run_recipe(
        datasets, data_args, training_args, lambda d, a, **kw: pretrain(d, data_args, model_args, a, **kw), resume,
        headline=lambda results: {"readout_layers": results["readout_layers"]},
    )


if __name__ == "__main__":
    from lcm_hf.console import run_main

    raise SystemExit(run_main(main))
