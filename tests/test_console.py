"""Console entries (issue 10 items 4, 6, 8): one-line user errors with exit status 2, --debug, --version,
--help without heavy imports, refused fake multi-process launches, flag conflicts."""

import os
import subprocess
import sys

import pytest
from own_data import ROOT, TINY_MODEL, load_script, write_cohort

from lcm_hf.console import EXIT_USAGE, run_main, strip_debug

TINY_TRAINING = ["--num_train_epochs", "1", "--momentum_epochs", "0", "--use_cpu", "--report_to", "none",
                 "--save_strategy", "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true"]


def one_line_error(capsys, main, argv):
    """Run `main(argv)` as its console entry does; return the one stderr line (asserting status 2)."""
    status = run_main(main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == EXIT_USAGE, err
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """A published dataset of 8 subjects x 80 TRs (8 ROIs) with sex / diagnosis / age."""
    folder = tmp_path_factory.mktemp("cohort")
    table = write_cohort(str(folder / "raw"), n_subjects=8, runs=1)
    output = folder / "published"
    build = load_script("processing/build_dataset.py")
    assert build.main([str(folder / "raw"), "--phenotypes", table, "--subject-column", "participant_id",
                       "--output", str(output)]) == 0
    return output


def pretrain_main():
    return load_script("training/pretrain.py").main


def finetune_main():
    return load_script("training/finetune.py").main


def training_argv(tmp_path, *extra):
    return [*extra, *TINY_MODEL, *TINY_TRAINING, "--output_dir", str(tmp_path / "run")]


# ----------------------------------------------------------------------------- training scripts
def test_dataset_dirs_typo_is_one_line_and_says_nothing_of_the_hub(capsys, tmp_path):
    missing = str(tmp_path / "my_datset")
    line = one_line_error(capsys, pretrain_main(), training_argv(
        tmp_path, "--dataset_dirs", missing, "--categorical_columns", "sex"))
    assert line == f"error: --dataset_dirs: expected existing dataset folders, got no folder at {missing!r}"
    assert "hub" not in line.lower()


def test_scans_shorter_than_the_window(capsys, tmp_path, dataset_dir):
    line = one_line_error(capsys, pretrain_main(), training_argv(
        tmp_path, "--dataset_dirs", str(dataset_dir), "--categorical_columns", "sex", "--window_size", "500"))
    assert line.startswith("error: --window_size: expected scans of at least 500 TRs, got none that long in the")
    assert "pass a smaller --window_size" in line


def test_unknown_bei_column_lists_close_matches(capsys, tmp_path, dataset_dir):
    line = one_line_error(capsys, pretrain_main(), training_argv(
        tmp_path, "--dataset_dirs", str(dataset_dir), "--categorical_columns", "Sex", "--window_size", "40"))
    assert "'Sex'" in line and "'sex'" in line and "Arrow" not in line, line


def test_validation_fraction_zero(capsys, tmp_path, dataset_dir):
    line = one_line_error(capsys, pretrain_main(), training_argv(
        tmp_path, "--dataset_dirs", str(dataset_dir), "--categorical_columns", "sex", "--validation_fraction", "0"))
    assert line.startswith("error: --validation_fraction: expected a fraction in (0, 1)") and line.endswith("got 0.0")


def test_flags_that_cannot_work_together(capsys, tmp_path, dataset_dir):
    line = one_line_error(capsys, pretrain_main(), training_argv(
        tmp_path, "--demo", "--dataset_dirs", str(dataset_dir)))
    assert line.startswith("error: --demo and --dataset_dirs: expected one data source, got both")
    line = one_line_error(capsys, finetune_main(), [
        "--dataset_dirs", str(dataset_dir), "--use_lora", "--mode", "scratch", *TINY_TRAINING,
        "--model_name_or_path", str(tmp_path / "no_model"), "--output_dir", str(tmp_path / "run")])
    assert line == "error: --use_lora: expected --mode semi_supervised, got --mode scratch"


def test_unknown_flag_is_one_line(capsys, tmp_path):
    line = one_line_error(capsys, pretrain_main(), ["--no_such_flag", "1"])
    assert "--no_such_flag" in line


def test_debug_shows_the_traceback(tmp_path):
    argv = training_argv(tmp_path, "--dataset_dirs", str(tmp_path / "missing"), "--categorical_columns", "sex")
    with pytest.raises(ValueError, match="--dataset_dirs: expected existing dataset folders"):
        run_main(pretrain_main(), [*argv, "--debug"])
    assert strip_debug(["--debug", "underflow_overflow", "--x"]) == (["--debug", "underflow_overflow", "--x"], False)


def test_unconnected_processes_are_refused(monkeypatch):
    from types import SimpleNamespace

    from lcm_hf.training.runtime import check_launch

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit, match=r"2 processes were launched .* add --use_cpu .*/cpu_2proc.yaml training/<script>.py --use_cpu"):
        check_launch(SimpleNamespace(world_size=1))
    check_launch(SimpleNamespace(world_size=2))  # a real distributed run


def test_cpu_accelerate_config_launches_two_connected_processes():
    import yaml

    config = yaml.safe_load(open(os.path.join(ROOT, "training", "accelerate_configs", "cpu_2proc.yaml")))
    assert config["num_processes"] == 2 and config["use_cpu"] is True
    assert config["distributed_type"] == "MULTI_GPU"  # + use_cpu: accelerate's torchrun launcher with gloo


# ----------------------------------------------------------------------------- build_dataset.py
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--window-size", "0"], "error: --window-size: expected a positive integer, got 0 (see build_dataset.py --help)"),
        (["--validation-size", "0.2"], "error: --validation-size 0.2: expected with --test-size > 0 (the validation "
                                       "split is cut next to a test split), got no --test-size (see build_dataset.py --help)"),
        (["--test-size", "1.5"], "error: --test-size: expected a fraction of subjects in [0, 1), got 1.5 (see build_dataset.py --help)"),
        (["--fisher-z"], "error: --fisher-z: expected with --connectivity (it transforms the FC computed from time "
                         "series; FC files say what they hold with --fc-values), got no --connectivity "
                         "(see build_dataset.py --help)"),
        (["--format", "abide", "--columns", "DX_GROUP", "--unmatched", "error"],
         "error: --format abide: expected no --columns, --unmatched (the ABIDE_pcp files and phenotype table are "
         "matched as nilearn's fetch_abide_pcp stores them), got --columns --unmatched (see build_dataset.py --help)"),
    ],
)
def test_build_dataset_flag_errors(capsys, tmp_path, flags, message):
    build = load_script("processing/build_dataset.py")
    assert one_line_error(capsys, build.main, [str(tmp_path), "--output", str(tmp_path / "out"), *flags]) == message
    assert not (tmp_path / "out").exists()


def test_build_dataset_refuses_to_publish_an_empty_dataset(capsys, tmp_path):
    table = write_cohort(str(tmp_path / "raw"), n_subjects=2, runs=1, n_timepoints=30)
    build = load_script("processing/build_dataset.py")
    line = one_line_error(capsys, build.main, [
        str(tmp_path / "raw"), "--phenotypes", table, "--subject-column", "participant_id", "--window-size", "50",
        "--short-series", "drop", "--output", str(tmp_path / "out")])
    assert line.startswith(f"error: {tmp_path / 'raw'}: expected rows to publish, got none")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- lcm-hf, --version, --help
def test_lcm_hf_usage_errors_are_one_line(capsys):
    from lcm_hf import cli

    assert one_line_error(capsys, cli.run, ["predcit"]).startswith("error: argument command: invalid choice: 'predcit'")


LIGHT = ["lcm-hf", "processing/build_dataset.py", "modeling/model_scale.py", "modeling/attention_maps.py",
         "modeling/export_to_hub.py", "modeling/convert_original_checkpoint.py"]


@pytest.mark.parametrize("script, flags", [(script, ("--version", "--help")) for script in LIGHT]
                         + [(script, ("--version",)) for script in ("training/pretrain.py", "training/finetune.py")])
def test_version_and_light_help(script, flags):
    """--version answers, and --help imports neither torch nor transformers (it answers in well under 1 s; the
    training scripts' --help needs transformers' TrainingArguments, their --version does not)."""
    if script == "lcm-hf":
        code = "import sys; sys.argv = ['lcm-hf', '{flag}']; from lcm_hf.cli import main; main()"  # as the console
    else:
        code = ("import runpy, sys; sys.argv = ['{script}', '{flag}']; sys.path.insert(0, '{folder}'); "
                "runpy.run_path('{root}/{script}', run_name='__main__')")
    for flag in flags:
        probe = code.format(flag=flag, script=script, root=ROOT, folder=os.path.join(ROOT, os.path.dirname(script)))
        wrapped = (f"import sys\ncode = 0\ntry:\n    exec({probe!r})\nexcept SystemExit as stop:\n    code = stop.code\n"
                   "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
                   "print('HEAVY', heavy)\nsys.exit(code or 0)")
        process = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert process.returncode == 0, process.stderr
        assert "HEAVY []" in process.stdout, (flag, process.stdout[-300:])
        if flag == "--version":
            assert "(lcm-hf) " in process.stdout


def test_training_script_version(capsys):
    with pytest.raises(SystemExit) as stop:
        pretrain_main()(["--version"])
    assert stop.value.code == 0 and "(lcm-hf) " in capsys.readouterr().out


# ----------------------------------------------------------------------------- a quiet terminal
@pytest.mark.slow
def test_quick_demo_prints_under_80_lines(tmp_path):
    """`lcm-hf demo --quick`: one bar per stage, one line per evaluation, no library noise (a minute or two)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.run(
        [sys.executable, "-c", "import sys; from lcm_hf.cli import main; sys.exit(main())", "demo", "--quick",
         "--output-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    lines = (process.stdout + process.stderr).rstrip("\n").split("\n")  # terminal lines (\r redraws a bar in place)
    assert len(lines) < 80, "\n".join(lines)
    text = "\n".join(lines)
    assert "pin_memory" not in text and "Flattening the indices" not in text and "Writing model shards" not in text
    assert "torch threads: " in text and " eval: loss " in text


def test_one_line_per_evaluation(capsys):
    from types import SimpleNamespace

    from lcm_hf.training.trainer import LcmProgressCallback

    callback = LcmProgressCallback()
    args, state = SimpleNamespace(disable_tqdm=True, output_dir="run"), SimpleNamespace(is_world_process_zero=True,
                                                                                         max_steps=4, global_step=0)
    callback.on_train_begin(args, state, None)
    state.global_step = 4  # a fresh run trained 4 steps (a resumed one counts only its own: test_bad_inputs.py)
    callback.on_log(args, state, None, logs={"loss": 1.0, "learning_rate": 1e-3, "epoch": 1.0})
    callback.on_log(args, state, None, logs={"eval_loss": 0.5, "eval_mean/balanced_accuracy": 0.75, "eval_sex/accuracy": 1.0,
                                             "eval_mean/subject/balanced_accuracy": 0.8, "epoch": 1.0})
    callback.on_log(args, state, None, logs={"train_runtime": 2.0, "train_loss": 0.9, "epoch": 1.0})
    assert capsys.readouterr().out.splitlines() == [
        "epoch 1 eval: loss 0.5, balanced_accuracy 0.750, subject/balanced_accuracy 0.800",
        "trained 4 steps in 2.0 s, mean loss 0.9",
    ]


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(capsys):
    """Issue 17 item 9: only the dedicated user-error type (and the OS's word on a path) becomes one line; a
    KeyError, a TypeError or a plain ValueError from inside a library is a bug and keeps its traceback."""
    from lcm_hf import LcmInputError, LcmInputTypeError

    def raising(error):
        def main(argv):
            raise error
        return main

    assert one_line_error(capsys, raising(LcmInputError("--x: expected 1, got 2")), []) == "error: --x: expected 1, got 2"
    assert one_line_error(capsys, raising(LcmInputTypeError("expected a str, got int")), []).endswith("got int")
    assert one_line_error(capsys, raising(FileNotFoundError("no file at 'a.tsv'")), []).endswith("'a.tsv'")
    for bug in (KeyError("beis"), TypeError("unsupported operand"), ValueError("math domain error")):
        with pytest.raises(type(bug)):
            run_main(raising(bug), [])
    assert issubclass(LcmInputError, ValueError) and issubclass(LcmInputTypeError, TypeError)


def test_a_flag_refused_by_transformers_is_a_user_error(capsys):
    """TrainingArguments checks some flags with plain ValueErrors: parse_arguments turns them into user errors."""
    line = one_line_error(capsys, pretrain_main(), ["--lr_scheduler_type", "linear", "--warmup_ratio", "2"])
    assert line.startswith("error: ") and "warmup" in line
