"""Finetune a pretrained LCM on a dataset with new BEIs.

    python training/finetune.py --model_name_or_path runs/pretrain --dataset_dirs data/my_cohort \
        --categorical_columns sex --new_beis diagnosis --output_dir runs/finetune
    python training/finetune.py --model_name_or_path runs/pretrain --demo --output_dir runs/finetune
    python training/finetune.py ... --mode linear_probe --output_dir runs/probe
    python training/finetune.py ... --mode scratch --output_dir runs/scratch
    python training/finetune.py ... --use_lora --lora_r 8 --output_dir runs/lora
    python training/finetune.py config.yaml
    python training/finetune.py ... --resume_from_checkpoint true     # continue after a kill (or a checkpoint PATH)
    accelerate launch [--config_file training/accelerate_configs/multi_gpu.yaml] training/finetune.py ...

Modes: `semi_supervised` (default: pretrained model + new BEI tokens, pretrained BEIs trained with true
labels, declared pseudo-labels and, with `--confident_pseudo_label_threshold 0.9`, the pretrained model's
confident predictions), `linear_probe` (frozen model; only the new BEIs' tokens and the readout train) and
`scratch` (same architecture, random init). The same subject-level split for the same `--split_seed`, so
the three can be compared. Same two-stage readout schedule as pretraining.

LoRA: `--use_lora` (with `semi_supervised`; `--lora_r`, `--lora_alpha`, `--lora_dropout`) trains LoRA adapters
on the attention projections plus the BEI tokens, readout and FC-encoder norm, and saves the adapter to
`--output_dir`; `lcm_hf.training.adapters.load_lora_adapter(LcmForBeiPrediction.from_pretrained(pretrained),
output_dir)` reloads it (`merge_lora` folds it into a plain model).

Initialisation guard (default, `--init_guard_folds 3`; 0: off): before finetuning, the pretrained start and the
same model from scratch are compared by an inner subject-grouped 3-fold CV on the training subjects only; scratch
is trained where it scores higher (a pretrained model can harm a BEI that reads FC factors its pretraining BEIs
never used: benchmarks/RESULTS_transfer.md). One line says which start was chosen and why.

Cross-validation: `--cv_folds 5` (same options and reports as `training/pretrain.py`: per-fold models in
`<output_dir>/fold-<k>`, `cv_report.md` with LCM vs baseline vs chance, intervals and the paired difference).
"""

from lcm_hf.console import exit_if_version
from lcm_hf.training.script_help import exit_if_help


def main(argv=None):
    exit_if_version(argv, "finetune.py")
    exit_if_help(argv, "finetune.py")  # the stored option list: no transformers (lcm_hf.training.script_help)
    from lcm_hf.training.arguments import (  # after --version: the parser needs transformers (seconds)
        SCRIPT_ARGUMENTS,
        parse_arguments,
    )

    data_args, finetune_args, training_args = parse_arguments(SCRIPT_ARGUMENTS["finetune.py"], argv)
    if finetune_args.model_name_or_path is None:
        finetune_args.model_name_or_path = "runs/pretrain"
    from lcm_hf.training.recipes import finetune
    from lcm_hf.training.runtime import prepare_run, run_recipe

    prepare_run(training_args, data_args, finetune_args)
    from lcm_hf.training.checkpoints import resume_argument

    resume = resume_argument(training_args, data_args)  # --resume_from_checkpoint PATH|true
    from lcm_hf.demo import script_datasets  # --demo (the simulated cohort) or --dataset_dirs

    datasets = script_datasets(data_args, "finetune")
    return run_recipe(
        datasets, data_args, training_args, lambda d, a, **kw: finetune(d, data_args, finetune_args, a, **kw), resume,
        headline=lambda results: {"mode": results["mode"], "init": results.get("init"), "new_beis": results["new_beis"]},
    )


if __name__ == "__main__":
    from lcm_hf.console import run_main

    raise SystemExit(run_main(main))
