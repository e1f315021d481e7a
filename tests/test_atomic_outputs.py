"""Issue 10 items 2-3: outputs are complete or absent; --overwrite replaces only what lcm-hf wrote, never
the inputs."""

import errno
import hashlib
import importlib.util
import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import torch

from lcm_hf import LcmConfig, LcmForBeiPrediction
from lcm_hf.atomic import (
    MARKER_NAME,
    atomic_write_json,
    atomic_write_text,
    check_output_folder,
    read_marker,
    written_by_lcm_hf,
)
from lcm_hf.data import load_published, publish_dataset, publishing

ROOT = Path(__file__).resolve().parents[1]
DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


def _tree(folder: Path) -> dict:
    """{relative path: sha256} of every file under `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def _dataset(n: int, offset: float = 0.0) -> datasets.DatasetDict:
    rows = {
        "subject_id": [f"sub-{i:02d}" for i in range(n)],
        "dataset": ["a"] * n,
        "site": ["s"] * n,
        "connectivity": [(np.eye(3) + offset + i).tolist() for i in range(n)],
        "sex": ["F", "M"] * (n // 2),
    }
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)})


# ----------------------------------------------------------------------------- build_dataset --overwrite
def _victim(tmp_path: Path) -> Path:
    """A user's raw folder: time-series files and the phenotype table inside it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        np.savetxt(victim / f"sub-{i:02d}_task-rest.tsv", rng.standard_normal((30, 5)), delimiter="\t")
    pd.DataFrame({"subject_id": [f"{i:02d}" for i in range(4)], "sex": ["F", "M"] * 2}).to_csv(
        victim / "phenotypes.csv", index=False
    )
    return victim


def _build_dataset(argv, capsys) -> str:
    """Run processing/build_dataset.py's main in-process; returns the error text (it must fail with status 2)."""
    spec = importlib.util.spec_from_file_location("build_dataset", ROOT / "processing" / "build_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises((SystemExit, ValueError)) as info:
        module.main([str(a) for a in argv])
    if isinstance(info.value, SystemExit):
        assert info.value.code == 2
        return capsys.readouterr().err
    return str(info.value)


@pytest.mark.parametrize("output", ["victim", "."])  # the input folder itself, or a folder holding it
def test_overwrite_on_the_input_folder_is_refused_and_the_inputs_are_untouched(tmp_path, capsys, output):
    victim = _victim(tmp_path)
    before = _tree(tmp_path)
    error = _build_dataset(
        [victim, "--phenotypes", victim / "phenotypes.csv", "--output", tmp_path / output, "--overwrite"], capsys
    )
    assert "--output: expected a folder apart from the inputs, got" in error
    assert "which holds the input" in error and "nothing was written" in error
    assert _tree(tmp_path) == before


def test_overwrite_of_a_folder_lcm_hf_did_not_write_is_refused(tmp_path, capsys):
    victim = _victim(tmp_path)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("precious")
    error = _build_dataset(
        [victim, "--phenotypes", victim / "phenotypes.csv", "--output", theirs, "--overwrite"], capsys
    )
    assert f"--overwrite replaces only a dataset lcm-hf wrote (a folder with {MARKER_NAME}), got {theirs}" in error
    assert (theirs / "notes.txt").read_text() == "precious"


def test_check_output_folder_rules(tmp_path):
    inputs = tmp_path / "in" / "scan.tsv"
    inputs.parent.mkdir()
    inputs.write_text("1\t2\n")
    with pytest.raises(ValueError, match=r"--output: expected a folder apart from the inputs, got .*in, which "
                                         r"holds the input"):
        check_output_folder(tmp_path / "in", kind="dataset", overwrite=True, inputs=[inputs], flag="--output")
    with pytest.raises(ValueError, match="output folder: expected a folder, got the file"):
        check_output_folder(inputs, kind="dataset")
    assert check_output_folder(tmp_path / "new", kind="dataset") == tmp_path / "new"  # new: fine
    with pytest.raises(ValueError, match="expected an empty or new output folder, got non-empty"):
        check_output_folder(tmp_path / "in", kind="dataset")
    model = tmp_path / "model"
    model.mkdir()
    atomic_write_json(model / MARKER_NAME, {"kind": "model", "version": "0"})
    with pytest.raises(ValueError, match="--overwrite replaces only a dataset lcm-hf wrote"):
        check_output_folder(model, kind="dataset", overwrite=True)  # ours, but a model, not a dataset
    assert check_output_folder(model, kind="model", overwrite=True) == model


# ----------------------------------------------------------------------------- publish_dataset
def test_overwrite_replaces_a_published_dataset_and_marks_it(tmp_path):
    folder = publish_dataset(_dataset(4), tmp_path / "pub")
    assert read_marker(folder)["kind"] == "dataset"
    publish_dataset(_dataset(6, offset=1.0), folder, overwrite=True)
    assert len(load_published(folder, cache_dir=str(tmp_path / "cache"))["train"]) == 6
    assert _leftovers(tmp_path) == []
    # A dataset published before markers existed (card tagged lcm-hf over parquet shards) is ours too.
    (folder / MARKER_NAME).unlink()
    assert written_by_lcm_hf(folder, "dataset")
    (folder / "mine.txt").write_text("a user's file makes it not ours")
    assert not written_by_lcm_hf(folder, "dataset")


def test_a_write_failure_leaves_the_previous_dataset_loadable(tmp_path, monkeypatch):
    folder = publish_dataset(_dataset(4), tmp_path / "pub", max_rows_per_shard=2)
    before = _tree(folder)
    calls = []
    write_shard = publishing.write_parquet_shard

    def disk_full_on_second_shard(dataset, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"PAR1 truncated")
            raise DISK_FULL
        return write_shard(dataset, path, *args, **kwargs)

    monkeypatch.setattr(publishing, "write_parquet_shard", disk_full_on_second_shard)
    with pytest.raises(OSError, match="No space left on device"):
        publish_dataset(_dataset(6, offset=1.0), folder, overwrite=True, max_rows_per_shard=2)
    assert _tree(folder) == before
    assert _leftovers(tmp_path) == []
    loaded = load_published(folder, cache_dir=str(tmp_path / "cache"))["train"]
    assert loaded["subject_id"] == [f"sub-{i:02d}" for i in range(4)]


# ----------------------------------------------------------------------------- save_pretrained
def _model(seed: int) -> LcmForBeiPrediction:
    torch.manual_seed(seed)
    config = LcmConfig(num_rois=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                       beis=[{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}])
    return LcmForBeiPrediction(config)


def test_save_pretrained_failing_midway_leaves_the_previous_model_loadable(tmp_path, monkeypatch):
    import transformers.modeling_utils

    folder = tmp_path / "model"
    old = _model(0)
    old.save_pretrained(folder)
    before = _tree(folder)

    def disk_full(*args, **kwargs):
        raise DISK_FULL

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        _model(1).save_pretrained(folder)  # config.json is written first, then the weights fail
    assert _tree(folder) == before
    assert _leftovers(tmp_path) == []
    loaded = LcmForBeiPrediction.from_pretrained(folder)
    for name, tensor in old.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, msg=name)
    # A new folder that fails is absent, not a folder holding only config.json.
    with pytest.raises(OSError):
        _model(1).save_pretrained(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_save_pretrained_into_a_run_folder_keeps_its_other_files(tmp_path):
    folder = tmp_path / "run"
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (folder / "results.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"stale weights of an older save")
    model = _model(0)
    model.save_pretrained(folder)
    assert {"checkpoint-2", "results.json", "config.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
    assert not (folder / "pytorch_model.bin").exists()  # would shadow nothing, but mixes two saves
    loaded = LcmForBeiPrediction.from_pretrained(folder)
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())


def test_processor_save_failing_midway_leaves_the_previous_processor(tmp_path, monkeypatch):
    from lcm_hf import BeiVocabulary, LcmProcessor

    vocabulary = BeiVocabulary([{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}])
    folder = tmp_path / "processor"
    paths = LcmProcessor(vocabulary=vocabulary, num_rois=6).save_pretrained(folder)
    assert all(str(p).startswith(str(folder)) for p in paths)  # the final paths, not the temporary ones
    before = _tree(folder)

    def disk_full(self, directory):
        raise DISK_FULL

    monkeypatch.setattr(BeiVocabulary, "save_pretrained", disk_full)
    with pytest.raises(OSError, match="No space left"):
        LcmProcessor(vocabulary=vocabulary, num_rois=7).save_pretrained(folder)
    assert _tree(folder) == before
    assert LcmProcessor.from_pretrained(folder).num_rois == 6


# ----------------------------------------------------------------------------- files
def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})  # not JSON: fails before anything is replaced
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "\udcff")
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
