"""An exported folder (config + safetensors + remote code with `auto_map`) loads through the Auto
classes with `trust_remote_code=True` in a fresh process where `lcm_hf` cannot be imported."""

import json
import subprocess
import sys
import textwrap

import torch

from lcm_hf import LcmConfig, LcmForBeiPrediction
from lcm_testing import make_tiny_config, random_connectivity

LOADER = textwrap.dedent(
    """
    import sys
    sys.modules["lcm_hf"] = None  # make `import lcm_hf` fail: only the exported files may be used
    try:
        import lcm_hf  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("lcm_hf is importable")
    import torch
    from transformers import AutoModel, AutoModelForPreTraining
    folder, connectivity_file, output_file = sys.argv[1:]
    connectivity = torch.load(connectivity_file, weights_only=True)
    head = AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True).eval()
    backbone = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert "lcm_hf" not in type(head).__module__, type(head).__module__
    with torch.no_grad():
        torch.save({"logits": head(connectivity).logits,
                    "states": backbone(connectivity).last_hidden_state,
                    "class": type(head).__name__}, output_file)
    """
)


def export_with_remote_code(model, folder):
    """Save with the remote-code files; `save_pretrained` maps the saved class itself, the backbone is added."""
    classes = {LcmConfig: "AutoConfig", LcmForBeiPrediction: "AutoModelForPreTraining"}
    model.config.auto_map = {"AutoModel": "modeling_lcm.LcmModel"}
    try:
        for cls, auto_class in classes.items():
            cls.register_for_auto_class(auto_class)
        model.save_pretrained(folder)
    finally:
        for cls in classes:
            cls._auto_class = None


def test_trust_remote_code_round_trip_without_lcm_hf(tmp_path):
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config()).eval()
    folder = tmp_path / "exported"
    export_with_remote_code(model, folder)

    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_lcm.LcmConfig",
        "AutoModel": "modeling_lcm.LcmModel",
        "AutoModelForPreTraining": "modeling_lcm.LcmForBeiPrediction",
    }
    assert {"configuration_lcm.py", "modeling_lcm.py", "model.safetensors"} <= {p.name for p in folder.iterdir()}

    connectivity = random_connectivity(3, 16)
    torch.save(connectivity, tmp_path / "connectivity.pt")
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(folder), str(tmp_path / "connectivity.pt"), str(tmp_path / "out.pt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = torch.load(tmp_path / "out.pt", weights_only=True)
    assert loaded["class"] == "LcmForBeiPrediction"
    with torch.no_grad():
        torch.testing.assert_close(loaded["logits"], model(connectivity).logits, rtol=0, atol=0)
        torch.testing.assert_close(loaded["states"], model.model(connectivity).last_hidden_state, rtol=0, atol=0)
