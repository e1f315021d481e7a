"""Issue 10 items 1-2: resume from the command line equals the uninterrupted run; a checkpoint is complete
or absent, and resuming takes the newest complete one and says so."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from test_training_scripts import ROOT, load_script
from trainer_helpers import collate, synthetic_dataset, tiny_model, training_args
from transformers import TrainerCallback

from lcm_hf.training.checkpoints import (
    checkpoint_problem,
    last_complete_checkpoint,
    resolve_resume,
)
from lcm_hf.training.trainer import LcmTrainer

# 3 demo datasets x 12 subjects -> 48 training windows, batch 8: 6 steps per epoch; stage 2 from step 7.
# An evaluation and a checkpoint every 2 steps; best_layer selection from the stage switch on.
CLI = [
    "--demo", "--demo_subjects", "12", "--readout_policy", "best_layer",
    "--hidden_size", "16", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "32",
    "--fc_norm", "layernorm", "--dropout", "0", "--attention_dropout", "0",
    "--num_train_epochs", "2", "--momentum_epochs", "1", "--per_device_train_batch_size", "8",
    "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
    "--save_total_limit", "100", "--seed", "0", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
    "--num_threads", "1", "--small_cohort_policy", "off",  # evaluations and selection on 5 validation subjects
]


def _weights(folder):
    return load_file(os.path.join(folder, "model.safetensors"))


def _results(folder):
    with open(os.path.join(folder, "results.json")) as handle:
        return json.load(handle)


def assert_same_run(resumed_dir, full_dir):
    """Same weights, selected layers, stage, selection and test metrics as the uninterrupted run."""
    full, resumed = _results(full_dir), _results(resumed_dir)
    assert resumed["readout_layers"] == full["readout_layers"] and full["readout_layers"]
    assert resumed["stage_history"] == full["stage_history"]
    assert resumed["selection_history"] == full["selection_history"]
    assert os.path.basename(resumed["best_model_checkpoint"] or "") == os.path.basename(
        full["best_model_checkpoint"] or ""
    )
    for key, value in full["test_metrics"].items():
        if "runtime" in key or "per_second" in key:
            continue
        if value is None:  # NaN in JSON
            assert resumed["test_metrics"][key] is None, key
        else:
            assert resumed["test_metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    full_weights, resumed_weights = _weights(full_dir), _weights(resumed_dir)
    assert full_weights.keys() == resumed_weights.keys()
    for name, tensor in full_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def _subprocess(script, argv, patch, log):
    """Start `training/<script>.py argv` in a new process with `patch` (Python code) applied first; its output
    goes to the file `log` (a pipe could fill up and stall it)."""
    code = (
        "import os, signal, sys, time, runpy\n"
        f"sys.path.insert(0, {os.path.join(ROOT, 'training')!r})\n"
        f"{patch}\n"
        f"sys.argv = [{script!r}] + {argv!r}\n"
        f"runpy.run_path({os.path.join(ROOT, 'training', script)!r}, run_name='__main__')\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with open(log, "wb") as handle:
        return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=handle, stderr=handle)


def _kill_after_checkpoint_4(process, output, log):
    """SIGKILL `process` by its PID once checkpoint-4 of `output` is complete."""
    deadline = time.time() + 300
    try:
        while not (output / "checkpoint-4" / "trainer_state.json").is_file():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint-4 within 300 s"
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.wait(60) == -signal.SIGKILL


# After checkpoint-4 is complete, wait to be killed (so the kill always lands between two checkpoints).
WAIT_AFTER_CHECKPOINT_4 = """
from lcm_hf.training.trainer import LcmTrainer
_save = LcmTrainer._save_checkpoint
def _save_then_wait(self, model, trial):
    _save(self, model, trial)
    if self.state.global_step == 4:
        time.sleep(600)
LcmTrainer._save_checkpoint = _save_then_wait
"""

# Killed while checkpoint-8 is written: the model is saved, optimizer.pt is half written.
KILL_WHILE_WRITING_CHECKPOINT_8 = """
from transformers import Trainer
_save = Trainer._save_optimizer_and_scheduler
def _half_then_die(self, output_dir):
    if self.state.global_step == 8:
        with open(os.path.join(output_dir, "optimizer.pt"), "wb") as handle:
            handle.write(b"truncated")
        os.kill(os.getpid(), signal.SIGKILL)
    _save(self, output_dir)
Trainer._save_optimizer_and_scheduler = _half_then_die
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    output = tmp_path_factory.mktemp("full")
    load_script("pretrain").main(CLI + ["--output_dir", str(output)])
    return output


@pytest.mark.slow
def test_sigkilled_pretraining_resumed_from_the_command_line_matches_the_uninterrupted_run(tmp_path, uninterrupted):
    output, log = tmp_path / "run", tmp_path / "log.txt"
    process = _subprocess("pretrain.py", CLI + ["--output_dir", str(output)], WAIT_AFTER_CHECKPOINT_4, log)
    _kill_after_checkpoint_4(process, output, log)
    assert not (output / "results.json").exists() and not (output / "checkpoint-6").exists()

    load_script("pretrain").main(CLI + ["--output_dir", str(output), "--resume_from_checkpoint", "true"])
    assert_same_run(output, uninterrupted)


@pytest.mark.slow
def test_killed_while_writing_a_checkpoint_resume_takes_the_previous_complete_one(tmp_path, uninterrupted, caplog):
    output, log = tmp_path / "run", tmp_path / "log.txt"
    process = _subprocess("pretrain.py", CLI + ["--output_dir", str(output)], KILL_WHILE_WRITING_CHECKPOINT_8, log)
    assert process.wait(300) == -signal.SIGKILL, log.read_text()[-3000:]
    # The half-written checkpoint is only a hidden staging folder; checkpoint-6 is complete.
    assert (output / ".checkpoint-8.tmp").is_dir() and not (output / "checkpoint-8").exists()
    assert last_complete_checkpoint(output) == (str(output / "checkpoint-6"), [])

    with caplog.at_level(logging.INFO, logger="lcm_hf.training.checkpoints"):
        load_script("pretrain").main(CLI + ["--output_dir", str(output), "--resume_from_checkpoint", "true"])
    assert f"resuming from {output / 'checkpoint-6'}" in caplog.text
    assert not (output / ".checkpoint-8.tmp").exists()  # the stale staging folder is cleaned up
    assert_same_run(output, uninterrupted)


@pytest.mark.slow
def test_pretraining_resumes_from_a_checkpoint_path_on_the_command_line(tmp_path, uninterrupted):
    """--resume_from_checkpoint PATH (a checkpoint of stage 1) continues across the stage switch."""
    output = tmp_path / "run"
    shutil.copytree(uninterrupted / "checkpoint-4", output / "checkpoint-4")
    load_script("pretrain").main(
        CLI + ["--output_dir", str(output), "--resume_from_checkpoint", str(output / "checkpoint-4")]
    )
    assert_same_run(output, uninterrupted)


# ----------------------------------------------------------------------------- fast: the Python API
class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(num_subjects=12, seed=0), synthetic_dataset(num_subjects=6, seed=1)


def _run(output_dir, data, seed=0, stop_at=None, resume=None):
    train, evaluation = data
    trainer = LcmTrainer(
        model=tiny_model(seed=seed, momentum_epochs=1, readout_policy="best_layer"),
        args=training_args(output_dir, num_train_epochs=2, save_strategy="steps", save_steps=2),
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collate,
        callbacks=[StopAt(stop_at)] if stop_at else None,
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


@pytest.fixture(scope="module")
def full(tmp_path_factory, data):
    """The uninterrupted API run (12 steps, stage 2 from step 7)."""
    return _run(tmp_path_factory.mktemp("full"), data)


def test_resume_true_skips_an_incomplete_newest_checkpoint_and_says_so(tmp_path, data, full, caplog):
    stopped = _run(tmp_path / "run", data, stop_at=8)  # 6 steps per epoch: stage 2, layers selected at 6
    assert stopped.state.global_step == 8
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")) == []  # no staging left
    # What an interrupted write leaves without staging: a truncated optimizer.pt, no trainer_state.json.
    broken = tmp_path / "run" / "checkpoint-10"
    shutil.copytree(tmp_path / "run" / "checkpoint-8", broken)
    (broken / "trainer_state.json").unlink()
    (broken / "optimizer.pt").write_bytes((broken / "optimizer.pt").read_bytes()[:100])
    assert checkpoint_problem(broken) == "no trainer_state.json"

    with caplog.at_level(logging.INFO, logger="lcm_hf.training.checkpoints"):
        resumed = _run(tmp_path / "run", data, seed=123, resume=True)
    assert f"skipping the incomplete checkpoint {broken} (no trainer_state.json)" in caplog.text
    assert f"resuming from {tmp_path / 'run' / 'checkpoint-8'}, the newest complete checkpoint" in caplog.text
    assert resumed.state.global_step == full.state.global_step == 12
    assert resumed.schedule.stage == "adaptive"
    assert resumed.model.config.readout_layers == full.model.config.readout_layers
    assert resumed.schedule.selection_history == full.schedule.selection_history
    assert resumed.schedule.stage_history == full.schedule.stage_history
    for name, tensor in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    # checkpoint-10 was rewritten complete by the resumed run (the broken one replaced).
    assert checkpoint_problem(broken) is None


def test_a_checkpoint_appears_only_when_complete(tmp_path, data, monkeypatch):
    """A failure while writing a checkpoint leaves no checkpoint-<step> folder (only a hidden staging one)."""
    from transformers import Trainer

    def disk_full(self, output_dir):
        if self.state.global_step == 4:
            raise OSError(28, "No space left on device")
        return save(self, output_dir)

    save = Trainer._save_optimizer_and_scheduler
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", disk_full)
    with pytest.raises(OSError, match="No space left"):
        _run(tmp_path, data)
    assert [p.name for p in sorted(tmp_path.glob("checkpoint-*"))] == ["checkpoint-2"]
    assert checkpoint_problem(tmp_path / "checkpoint-2") is None


def test_resume_argument_of_the_scripts(tmp_path):
    assert resolve_resume(None) is None and resolve_resume("false") is None
    assert resolve_resume("True") is True and resolve_resume("true") is True
    with pytest.raises(ValueError, match=r"--resume_from_checkpoint: expected a checkpoint folder or 'true', got "
                                         r"'.*nowhere', which does not exist"):
        resolve_resume(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="--resume_from_checkpoint: expected a complete checkpoint-<step> folder in "
                                         "--output_dir .*, got none"):
        resolve_resume("true", tmp_path)
    broken = tmp_path / "checkpoint-3"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match=r"expected a complete checkpoint folder, got '.*checkpoint-3', which is "
                                         r"incomplete \(no trainer_state.json\)"):
        resolve_resume(str(broken))
    (broken / "trainer_state.json").write_text("{}")
    assert resolve_resume(str(broken)) == str(broken)
    assert resolve_resume(str(tmp_path)) == str(broken)  # a run folder: its newest complete checkpoint


def test_resume_argument_warns_before_a_fresh_run_replaces_checkpoints(tmp_path, caplog):
    from types import SimpleNamespace

    from lcm_hf.training.checkpoints import resume_argument

    (tmp_path / "checkpoint-2").mkdir()
    with caplog.at_level(logging.WARNING, logger="lcm_hf.training.checkpoints"):
        assert resume_argument(SimpleNamespace(resume_from_checkpoint=None, output_dir=str(tmp_path))) is None
    assert "holds checkpoints from an earlier run: training starts from step 0 and replaces them; pass " \
           "--resume_from_checkpoint true to continue that run instead" in caplog.text
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-2" / "model.safetensors").write_bytes(b"")
    args = SimpleNamespace(resume_from_checkpoint="true", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="--resume_from_checkpoint: expected no resume with --cv_folds"):
        resume_argument(args, SimpleNamespace(cv_folds=3))
    assert resume_argument(args, SimpleNamespace(cv_folds=None)) is True


def test_pretrain_script_refuses_a_missing_resume_path(tmp_path):
    with pytest.raises(ValueError, match="--resume_from_checkpoint: expected a checkpoint folder or 'true', got "):
        load_script("pretrain").main(
            CLI + ["--output_dir", str(tmp_path), "--resume_from_checkpoint", str(tmp_path / "checkpoint-9")]
        )


@pytest.mark.slow
def test_sigkilled_finetuning_with_new_beis_resumes_like_the_uninterrupted_run(tmp_path, uninterrupted):
    """The recipe adds the new BEIs before the trainer loads the checkpoint, so their rows resume too."""
    model_flags = ("--readout_policy", "--hidden_size", "--num_hidden_layers", "--num_attention_heads",
                   "--intermediate_size", "--fc_norm", "--dropout", "--attention_dropout")
    finetune_cli = [arg for i, arg in enumerate(CLI) if arg not in model_flags and CLI[i - 1] not in model_flags]
    finetune_cli += ["--model_name_or_path", str(uninterrupted)]
    full = tmp_path / "full"
    load_script("finetune").main(finetune_cli + ["--output_dir", str(full)])
    assert _results(full)["new_beis"]

    output, log = tmp_path / "run", tmp_path / "log.txt"
    process = _subprocess("finetune.py", finetune_cli + ["--output_dir", str(output)], WAIT_AFTER_CHECKPOINT_4, log)
    _kill_after_checkpoint_4(process, output, log)

    load_script("finetune").main(finetune_cli + ["--output_dir", str(output), "--resume_from_checkpoint", "true"])
    assert _results(output)["new_beis"] == _results(full)["new_beis"]
    assert_same_run(output, full)


@pytest.mark.slow
def test_two_process_checkpoints_are_complete_and_the_best_one_is_found(tmp_path):
    """Both ranks write into the staging folder (each its RNG state); rank 0 renames it; every rank knows the
    best checkpoint by its final name."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               os.path.join(ROOT, "training", "accelerate_configs", "cpu_2proc.yaml"),
               os.path.join(ROOT, "training", "pretrain.py")]
    argv = CLI + ["--per_device_train_batch_size", "4"]  # the last value wins: a global batch of 8
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    completed = subprocess.run(command + argv + ["--output_dir", str(tmp_path)], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Could not locate the best model" not in completed.stderr + completed.stdout
    saved = [p for p in tmp_path.iterdir() if p.name.startswith("checkpoint-")]
    assert saved and not [p for p in tmp_path.iterdir() if p.name.startswith(".checkpoint-")]
    for checkpoint in saved:
        assert checkpoint_problem(checkpoint) is None
        assert {"rng_state_0.pth", "rng_state_1.pth", "optimizer.pt"} <= {p.name for p in checkpoint.iterdir()}
    assert os.path.dirname(_results(tmp_path)["best_model_checkpoint"]) == str(tmp_path)
