"""Columns and classes across datasets: missing BEI columns, unlabelled BEIs, class spellings, aliases and
dataset names that collide (issue 9, item 5)."""

import warnings

import numpy as np
import pytest
from datasets import Dataset

from lcm_hf.data import (
    apply_class_aliases,
    connectome_features,
    merge_connectome_datasets,
    similar_classes,
    union_vocabulary,
)
from lcm_hf.training.data import unique_dataset_names


def fc_dataset(name, n_rows=4, **columns):
    rng = np.random.default_rng(len(name))
    fcs = [np.corrcoef(rng.standard_normal((20, 3)).T).astype(np.float32) for _ in range(n_rows)]
    data = {"subject_id": [f"{name}-{i}" for i in range(n_rows)], "dataset": [name] * n_rows,
            "site": ["x"] * n_rows, "connectivity": fcs, **columns}
    phenotypes = {c: "float32" if isinstance(v[0], float) else "string" for c, v in columns.items()}
    return Dataset.from_dict(data, features=connectome_features(3, phenotypes, representation="connectivity"))


def test_missing_bei_column_lists_close_matches():
    """Today 'Sex' for 'sex' gives an all-missing BEI and trains on nothing, without a word."""
    datasets = {"a": fc_dataset("a", sex=["F", "M", "F", "M"])}
    with pytest.raises(ValueError, match=r"expected BEI column 'Sex' in any dataset, got none; close matches: "
                                         r"\['sex'\]"):
        union_vocabulary(datasets, ["Sex"])
    with pytest.raises(ValueError, match="expected BEI column 'diagnosis' in any dataset"):
        union_vocabulary(datasets, ["sex"], ["diagnosis"])
    datasets["b"] = fc_dataset("b", sex=["M", "F", "M", "F"])
    vocab = union_vocabulary(datasets, ["task"], pseudo_labels={"a": {"task": "rest"}, "b": {"task": "motor"}})
    assert vocab["task"]["classes"] == ["motor", "rest"]  # declared only through pseudo-labels: not missing


def test_bei_without_labels_in_a_dataset_warns_naming_it():
    datasets = {"a": fc_dataset("a", sex=["F", "M", "F", "M"], dx=["x", "y", "x", "y"]),
                "b": fc_dataset("b", sex=["F", "M", None, "M"], dx=[None] * 4),
                "c": fc_dataset("c", sex=["M", "F", "M", "F"])}
    with pytest.warns(RuntimeWarning, match=r"BEIs without any label in a dataset \(they train nothing there\): "
                                            r"'dx' in 'b', 'c'"):
        vocab = union_vocabulary(datasets, ["sex", "dx"])
    assert vocab.names == ["sex", "dx"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pseudo-labels count as labels: no warning
        union_vocabulary({k: datasets[k] for k in "ac"}, ["sex", "task"],
                         pseudo_labels={"a": {"task": "rest"}, "c": {"task": "motor"}})


def test_class_spellings_warn_and_aliases_merge_them():
    """Today F/M in one dataset and female/male in another become a 4-class BEI, silently."""
    datasets = {"a": fc_dataset("a", sex=["F", "M", "F", "M"]),
                "b": fc_dataset("b", sex=["female", "male", "female", "Male"])}
    assert similar_classes(["F", "M", "Male", "female", "male"]) == [("F", "female"), ("M", "Male"), ("M", "male"),
                                                                     ("Male", "male")]
    with pytest.warns(RuntimeWarning, match=r"BEI 'sex': classes that differ only by case or spelling: 'F' \(a\) ~ "
                                            r"'female' \(b\).*class_aliases="):
        vocab = union_vocabulary(datasets, ["sex"])
    assert vocab["sex"]["classes"] == ["F", "M", "Male", "female", "male"]  # matched exactly, no guessing
    aliases = {"sex": {"female": "F", "male": "M", "Male": "M"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vocab = union_vocabulary(datasets, ["sex"], class_aliases=aliases)
    assert vocab["sex"]["classes"] == ["F", "M"]
    merged, _ = merge_connectome_datasets(datasets, vocab, class_aliases=aliases)
    assert merged["sex"] == ["F", "M", "F", "M"] * 2
    assert apply_class_aliases(datasets["a"], {"dx": {"a": "b"}}) is datasets["a"]  # absent column: unchanged
    with pytest.raises(TypeError, match=r"expected class_aliases\['sex'\] as \{spelling: class\}, got str"):
        union_vocabulary(datasets, ["sex"], class_aliases={"sex": "F"})


def test_colliding_dataset_names_never_collapse(tmp_path):
    """Two --dataset_dirs whose folders share a name collapsed into one dataset."""
    first = fc_dataset("data", sex=["F", "M", "F", "M"])
    second = fc_dataset("data", sex=["M", "F", "M", "F"])
    vocab = union_vocabulary({"x": first, "y": second}, ["sex"])
    with pytest.raises(ValueError, match=r"expected distinct dataset names, got 'data' in both inputs 'x' and 'y'.*"
                                         r"rename=True"):
        merge_connectome_datasets({"x": first, "y": second}, vocab)
    names = unique_dataset_names([tmp_path / "site_a" / "data", tmp_path / "site_b" / "data", tmp_path / "abide"])
    assert names == ["site_a/data", "site_b/data", "abide"]
    merged, _ = merge_connectome_datasets(dict(zip(names[:2], (first, second))), vocab, rename=True)
    assert merged["dataset"] == ["site_a/data"] * 4 + ["site_b/data"] * 4
    assert merged["scan_id"] == ["scan-1"] * 8  # added where absent
    assert unique_dataset_names(["/a/x/d", "/b/x/d", "/c/y"]) == ["a/x/d", "b/x/d", "y"]
    with pytest.raises(ValueError, match="got the same folder twice"):
        unique_dataset_names([tmp_path / "a", tmp_path / "a"])
