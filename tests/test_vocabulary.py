"""BeiVocabulary: building, encoding (missing never errors), merging, token layout, JSON."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lcm_hf import BeiVocabulary, LcmConfig
from lcm_hf.vocabulary_lcm import NA_CLASS


@pytest.fixture
def table():
    return pd.DataFrame({
        "sex": ["F", "M", None, "F"],
        "diagnosis": [1, 2, 1, np.nan],
        "age": [20.5, 31.0, np.nan, 44.0],
        "other": ["x", "y", "z", "w"],
    })


@pytest.fixture
def vocab(table):
    return BeiVocabulary.from_dataframe(table, categorical=["sex", "diagnosis"], continuous=["age"])


def test_from_dataframe_layout(vocab):
    assert vocab.names == ["sex", "diagnosis", "age"] and len(vocab) == 3
    assert vocab.to_config() == [
        {"name": "sex", "kind": "categorical", "classes": ["F", "M"], "loss_weight": 1.0},
        {"name": "diagnosis", "kind": "categorical", "classes": ["1", "2"], "loss_weight": 1.0},
        {"name": "age", "kind": "continuous", "loss_weight": 1e-4},
    ]
    assert vocab.token_slices() == {"sex": slice(0, 2), "diagnosis": slice(2, 4), "age": slice(4, 5)}
    assert vocab.num_tokens == 5
    assert vocab.token_names() == ["sex=F", "sex=M", "diagnosis=1", "diagnosis=2", "age"]


def test_token_slices_match_config(vocab):
    config = LcmConfig(num_rois=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=16, beis=vocab.to_config())
    assert config.bei_token_slices() == list(vocab.token_slices().values())
    assert config.num_bei_tokens == vocab.num_tokens
    assert BeiVocabulary.from_config(config.beis) == vocab


def test_encode_missing_is_nan(vocab, table):
    labels = vocab.encode(table)
    assert labels.dtype == torch.float32 and labels.shape == (4, 3)
    expected = np.array([[0, 0, 20.5], [1, 1, 31.0], [np.nan, 0, np.nan], [0, np.nan, 44.0]], dtype=np.float32)
    np.testing.assert_array_equal(labels.numpy(), expected)
    rows = vocab.encode([{"sex": "M"}, {}, {"sex": "", "age": None, "unrelated": 3}], return_tensors="np")
    assert isinstance(rows, np.ndarray)
    np.testing.assert_array_equal(rows, [[1, np.nan, np.nan]] + [[np.nan] * 3] * 2)
    assert vocab.encode({"sex": ["F", "M"], "age": [1.0, 2.0]}).shape == (2, 3)  # dict of columns


def test_encode_unknown_class_lists_known(vocab):
    with pytest.raises(ValueError, match=r"unknown class 'X' for BEI 'sex'; known classes: \['F', 'M'\]"):
        vocab.encode([{"sex": "X"}])
    with pytest.raises(ValueError, match="expected a number for continuous BEI 'age', got 'old'"):
        vocab.encode([{"age": "old"}])
    with pytest.raises(TypeError, match="expected phenotype rows as dicts, got int for row 0"):
        vocab.encode([3])


def test_na_class(table):
    vocab = BeiVocabulary.from_dataframe(table, categorical=["sex", "diagnosis"], na_class={"sex": True})
    assert vocab["sex"]["classes"] == ["F", "M", NA_CLASS]
    assert vocab["diagnosis"]["classes"] == ["1", "2"]
    labels = vocab.encode(table).numpy()
    assert labels[2, 0] == 2.0 and math.isnan(labels[3, 1])


def test_bins(table):
    vocab = BeiVocabulary.from_dataframe(table, bins={"age": [0, 30, 60]})
    assert vocab["age"]["classes"] == ["[0, 30)", "[30, 60)"]
    np.testing.assert_array_equal(vocab.encode(table).numpy()[:, 0], [0, 1, np.nan, 1])
    with pytest.raises(ValueError, match=r"expected 'age' within the bins \[0, 60\), got 75"):
        vocab.encode([{"age": 75}])
    again = BeiVocabulary.from_json_string(vocab.to_json_string())
    assert again["age"]["bins"] == [0.0, 30.0, 60.0]


def test_from_dataframe_errors(table):
    with pytest.raises(ValueError, match=r"expected columns \['height'\] in the phenotype table"):
        BeiVocabulary.from_dataframe(table, continuous=["height"])
    with pytest.raises(ValueError, match="expected numbers in continuous column 'other', got 'x'"):
        BeiVocabulary.from_dataframe(table, continuous=["other"])
    with pytest.raises(ValueError, match=r"expected at least 2 classes in categorical column 'one'"):
        BeiVocabulary.from_dataframe({"one": ["a", "a"]}, categorical=["one"])
    with pytest.raises(ValueError, match=r"expected unique BEI names, got duplicates \['a'\]"):
        BeiVocabulary([{"name": "a", "kind": "continuous"}] * 2)
    with pytest.raises(ValueError, match=r"`beis\[0\]\['kind'\]` must be one of"):
        BeiVocabulary([{"name": "a", "kind": "ordinal"}])


def test_decode_round_trip(vocab, table):
    rows = vocab.decode(vocab.encode(table))
    assert rows[0] == {"sex": "F", "diagnosis": "1", "age": 20.5}
    assert rows[2] == {"diagnosis": "1"}
    with pytest.raises(ValueError, match=r"expected labels of shape \(B, 3\), got \(1, 2\)"):
        vocab.decode(np.zeros((1, 2)))


def test_merge_shares_identical_beis(vocab):
    other = BeiVocabulary([{"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
                           {"name": "task", "kind": "categorical", "classes": ["rest", "wm"]}])
    merged = vocab.merge(other)
    assert merged.names == ["sex", "diagnosis", "age", "task"]
    assert merged.num_tokens == 7
    assert BeiVocabulary.merge(vocab, other) == merged


def test_merge_conflict(vocab):
    other = BeiVocabulary([{"name": "diagnosis", "kind": "categorical", "classes": ["AD", "CN"]}])
    with pytest.raises(ValueError, match=r"cannot merge BEI 'diagnosis': expected classes \['1', '2'\], got \['AD', 'CN'\]"):
        vocab.merge(other)
    assert vocab.merge(other, on_conflict="union")["diagnosis"]["classes"] == ["1", "2", "AD", "CN"]
    renamed = vocab.merge(other, on_conflict="rename")
    assert renamed.names[-1] == "diagnosis_2"
    with pytest.raises(ValueError, match="cannot merge BEI 'age': expected kind 'continuous', got 'categorical'"):
        vocab.merge(BeiVocabulary([{"name": "age", "kind": "categorical", "classes": ["young", "old"]}]))


def test_extend_and_token_mapping(vocab):
    grown = vocab.extend([{"name": "sex", "kind": "categorical", "classes": ["F", "M", "X"]},
                          {"name": "pd", "kind": "categorical", "classes": ["PD", "control"]}])
    assert grown["sex"]["classes"] == ["F", "M", "X"] and grown.names[-1] == "pd"
    assert grown.token_mapping(vocab) == [0, 1, -1, 2, 3, 4, -1, -1]


def test_extend_and_union_keep_na_last_by_the_one_growth_rule():
    """`[A, B, n/a] + C` is `[A, B, C, n/a]` for extend, merge(on_conflict="union") and the config's growth rule
    (`grow_beis`, which `model.add_beis` applies); reordering existing classes is refused."""
    from lcm_hf.configuration_lcm import grow_beis

    site = {"name": "site", "kind": "categorical", "classes": ["A", "B", "n/a"]}
    vocab = BeiVocabulary([site])
    grown = vocab.extend([{"name": "site", "kind": "categorical", "classes": ["A", "B", "C"]}])
    assert grown["site"]["classes"] == ["A", "B", "C", "n/a"]
    assert grown.token_mapping(vocab) == [0, 1, -1, 2]
    united = vocab.merge(BeiVocabulary([{"name": "site", "kind": "categorical", "classes": ["C", "B"]}]),
                         on_conflict="union")
    assert united["site"]["classes"] == ["A", "B", "C", "n/a"]
    (config_grown,) = grow_beis([site], [{"name": "site", "kind": "categorical", "classes": ["A", "B", "n/a", "C"]}])
    assert config_grown["classes"] == grown["site"]["classes"]
    gains_na = BeiVocabulary([{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}]).extend(
        [{"name": "sex", "kind": "categorical", "classes": ["F", "n/a", "M"]}])
    assert gains_na["sex"]["classes"] == ["F", "M", "n/a"]
    with pytest.raises(ValueError, match=r"BEI 'site': expected a class list extending \['A', 'B', 'n/a'\], got "
                                         r"\['B', 'A', 'C'\] \(new classes go after the existing ones, 'n/a' last\)"):
        vocab.extend([{"name": "site", "kind": "categorical", "classes": ["B", "A", "C"]}])
    binned = BeiVocabulary([{"name": "age_bin", "kind": "categorical", "classes": ["[0, 10)", "[10, 20)"],
                             "bins": [0, 10, 20]}])
    with pytest.raises(ValueError, match=r"cannot add classes to the binned BEI 'age_bin'"):
        binned.extend([{"name": "age_bin", "kind": "categorical", "classes": ["[0, 10)", "[10, 20)", "[20, 30)"]}])


def test_save_load(vocab, tmp_path):
    path = vocab.save_pretrained(tmp_path)
    assert path.endswith("bei_vocabulary.json")
    assert BeiVocabulary.from_pretrained(tmp_path) == vocab
    with pytest.raises(FileNotFoundError, match="expected bei_vocabulary.json"):
        BeiVocabulary.from_pretrained(tmp_path / "nowhere")


def test_standardize_continuous_columns(table, tmp_path):
    vocab = BeiVocabulary.from_dataframe(table, categorical=["sex"], continuous=["age"], standardize=True)
    ages = np.asarray([a for a in table["age"] if not pd.isna(a)], dtype=np.float64)
    (age,) = [bei for bei in vocab.to_config() if bei["name"] == "age"]
    assert math.isclose(age["center"], ages.mean()) and math.isclose(age["scale"], ages.std())
    assert age["loss_weight"] == 1.0
    assert LcmConfig(num_rois=4, hidden_size=8, num_attention_heads=2, beis=vocab.to_config()).beis[1] == age
    vocab.save_pretrained(tmp_path)
    assert BeiVocabulary.from_pretrained(tmp_path) == vocab
    raw = BeiVocabulary.from_dataframe(table, continuous=["age"])
    assert "scale" not in raw["age"] and raw["age"]["loss_weight"] == 1e-4
