import json

import pytest
import torch
import transformers

from lcm_hf import PRESETS, LcmConfig, LcmForBeiPrediction
from lcm_testing import TINY_BEIS, make_tiny_config

# Parameter counts of the paper's reference code (N=116, E=2048, 8 heads, FFN 768).
REFERENCE_PARAMETERS = {"small": 147.19e6, "base": 294.1e6, "mid": 734.9e6, "big": 1175.7e6}


def test_auto_config_resolves_lcm():
    config = transformers.AutoConfig.for_model("lcm", num_rois=20)
    assert isinstance(config, LcmConfig) and config.num_rois == 20


@pytest.mark.parametrize("preset", sorted(REFERENCE_PARAMETERS))
def test_preset_parameter_counts_match_reference_code(preset):
    beis = [
        {"name": "task", "kind": "categorical", "classes": ["rest", "wm", "motor", "gambling"]},
        {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
        {"name": "age", "kind": "continuous"},
    ]
    config = LcmConfig.from_preset(preset, beis=beis)
    with torch.device("meta"):
        model = LcmForBeiPrediction(config)
    count = sum(parameter.numel() for parameter in model.parameters())
    assert abs(count / REFERENCE_PARAMETERS[preset] - 1) < 0.005
    assert config.num_hidden_layers == PRESETS[preset]["num_hidden_layers"]


def test_preset_overrides_and_unknown_name():
    assert LcmConfig.from_preset("small", num_rois=200).num_rois == 200
    with pytest.raises(ValueError, match=r"`name` must be one of \['small', 'base', 'mid', 'big'\], got 'huge'"):
        LcmConfig.from_preset("huge")


def test_bei_layout_and_default_loss_weights(tiny_config):
    assert tiny_config.num_beis == 3 and tiny_config.num_bei_tokens == 6
    assert tiny_config.bei_token_slices() == [slice(0, 2), slice(2, 5), slice(5, 6)]
    assert [bei["loss_weight"] for bei in tiny_config.beis] == [1.0, 1.0, 1e-4]


def test_json_round_trip(tmp_path):
    config = make_tiny_config(readout_policy="best_layer", readout_layers={"sex": 1, "diagnosis": 0})
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "lcm" and saved["readout_layers"] == {"sex": 1, "diagnosis": 0}
    loaded = LcmConfig.from_pretrained(tmp_path)
    assert loaded.beis == config.beis and loaded.readout_layers == config.readout_layers
    assert loaded.readout_policy == "best_layer"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"readout_policy": "median"}, r"`readout_policy` must be one of \['max', 'best_layer', 'mean', 'last'\], got 'median'"),
        ({"norm_position": "middle"}, r"`norm_position` must be one of \['post', 'pre'\], got 'middle'"),
        ({"fc_norm": "rmsnorm"}, r"`fc_norm` must be one of \['batchnorm', 'layernorm'\], got 'rmsnorm'"),
        ({"hidden_act": "tanh"}, r"`hidden_act` must be one of \['relu', 'gelu', 'silu'\], got 'tanh'"),
        ({"num_rois": 0}, r"`num_rois` must be a positive integer, got 0"),
        ({"num_hidden_layers": 2.5}, r"`num_hidden_layers` must be a positive integer, got 2.5"),
        ({"hidden_size": 30}, r"`hidden_size` must be divisible by `num_attention_heads`, got 30 and 4"),
        ({"dropout": 1.5}, r"`dropout` must be a float in \[0, 1\), got 1.5"),
        ({"momentum_epochs": -1}, r"`momentum_epochs` must be an integer >= 0, got -1"),
        ({"readout_layers": {"sex": 7}}, r"`readout_layers\['sex'\]` must be a layer index in \[0, 3\), got 7"),
        ({"readout_layers": {"height": 0}}, r"`readout_layers` names an unknown BEI 'height'"),
        ({"beis": [{"name": "sex", "kind": "ordinal"}]}, r"`beis\[0\]\['kind'\]` must be one of \['categorical', 'continuous'\], got 'ordinal'"),
        ({"beis": [{"name": "sex", "kind": "categorical", "classes": ["F"]}]}, r"must list at least 2 class names, got \['F'\]"),
        ({"beis": [TINY_BEIS[0], TINY_BEIS[0]]}, r"has the BEI name 'sex' twice"),
        ({"beis": [{"name": "age", "kind": "continuous", "loss_weight": -1}]}, r"`beis\[0\]\['loss_weight'\]` \('age'\) must be a float >= 0, got -1"),
    ],
)
def test_invalid_values_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_tiny_config(**overrides)


def test_beis_must_be_a_list_of_dicts():
    with pytest.raises(TypeError, match=r"`beis` must be a list of dicts, got str"):
        make_tiny_config(beis="sex")
    with pytest.raises(TypeError, match=r"`beis\[0\]` must be a dict, got str"):
        make_tiny_config(beis=["sex"])


def test_continuous_bei_standardisation_fields():
    config = make_tiny_config(beis=[{"name": "age", "kind": "continuous", "center": 40, "scale": 12}])
    assert config.beis == [{"name": "age", "kind": "continuous", "center": 40.0, "scale": 12.0, "loss_weight": 1.0}]
    with pytest.raises(ValueError, match=r"`beis\[0\]\['scale'\]` \('age'\) must be > 0, got 0"):
        make_tiny_config(beis=[{"name": "age", "kind": "continuous", "center": 40, "scale": 0}])
    with pytest.raises(ValueError, match=r"`beis\[0\]\['center'\]` \('age'\) must be a finite float, got 'old'"):
        make_tiny_config(beis=[{"name": "age", "kind": "continuous", "center": "old", "scale": 1}])


def test_import_lcm_hf_registers_the_auto_classes_and_the_pipeline_task():
    """`import lcm_hf` alone makes AutoConfig know "lcm" and transformers know the pipeline task (fresh process)."""
    import os
    import subprocess
    import sys

    code = ("import lcm_hf, transformers\n"
            "from transformers.pipelines import PIPELINE_REGISTRY\n"
            "print(type(transformers.AutoConfig.for_model('lcm')).__name__, "
            "'phenotype-prediction' in PIPELINE_REGISTRY.get_supported_tasks())")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert process.stdout.split() == ["LcmConfig", "True"], process.stderr[-2000:]
