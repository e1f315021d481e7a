"""Publishing (parquet + card, read back offline) and processing/build_dataset.py."""

import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from lcm_hf import BeiVocabulary
from lcm_hf.data import load_published, publish_dataset
from lcm_hf.demo import make_demo_cohort

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "processing" / "build_dataset.py"


def test_publish_and_load_offline(tmp_path):
    cohort = make_demo_cohort(n_subjects=6, n_timepoints=25, datasets=("abide_like",))
    vocab = BeiVocabulary.from_dataframe(cohort["abide_like"], categorical=["autism"])
    folder = publish_dataset(datasets.DatasetDict({"train": cohort["abide_like"]}), tmp_path / "pub",
                             max_rows_per_shard=4, vocabulary=vocab, description="simulated")
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "path: data/train-*" in card
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].features == cohort["abide_like"].features
    np.testing.assert_array_equal(np.asarray(loaded["train"].with_format("numpy")[5]["timeseries"]),
                                  np.asarray(cohort["abide_like"].with_format("numpy")[5]["timeseries"]))
    assert BeiVocabulary.from_pretrained(folder) == vocab
    assert load_published(folder)["train"]["subject_id"] == cohort["abide_like"]["subject_id"]
    with pytest.raises(ValueError, match="expected an empty or new output folder"):
        publish_dataset(cohort["abide_like"], folder)


def test_published_shards_dictionary_encode_only_scalar_columns(tmp_path):
    """Dictionary-encoded time series decode ~3x slower (the streaming bottleneck): only scalars get a dictionary."""
    import pyarrow.parquet as pq

    cohort = make_demo_cohort(n_subjects=4, n_timepoints=25, datasets=("abide_like",))
    folder = publish_dataset(cohort["abide_like"], tmp_path / "pub")
    meta = pq.ParquetFile(next((folder / "data").glob("*.parquet"))).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema.split(".")[0]: meta.column(i).encodings
                 for i in range(meta.num_columns)}
    assert not any("DICTIONARY" in e for e in encodings["timeseries"]), encodings["timeseries"]
    assert any("DICTIONARY" in e for e in encodings["subject_id"]), encodings["subject_id"]


def test_build_dataset_help():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    for text in ("--phenotypes", "--id-column", "sub-XX", "fetch_abide_pcp", "--mat-key", "--window-size"):
        assert text in result.stdout


def test_build_dataset_tsv_folder(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        np.savetxt(raw / f"sub-{i:02d}_task-rest.tsv", rng.standard_normal((40, 8)), delimiter="\t",
                   header="\t".join(f"roi{k}" for k in range(8)), comments="")
    pd.DataFrame({"participant_id": [f"{i:02d}" for i in range(6)], "dx": ["PD", "control"] * 3,
                  "site": ["a", "a", "b", "b", "c", "c"]}).to_csv(raw / "phenotypes.csv", index=False)
    out = tmp_path / "built"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(raw), "--phenotypes", str(raw / "phenotypes.csv"),
         "--id-column", "participant_id", "--output", str(out), "--connectivity", "--test-size", "0.34"],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "test"} and len(loaded["train"]) + len(loaded["test"]) == 6
    assert loaded["train"].features["connectivity"].shape == (8, 8)
    assert set(loaded["train"].column_names) >= {"subject_id", "dataset", "site", "dx", "task", "connectivity"}
    assert not set(loaded["train"]["subject_id"]) & set(loaded["test"]["subject_id"])
