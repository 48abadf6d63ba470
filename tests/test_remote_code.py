import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import padded_batch, tiny_config_kwargs
from helpers_remote import run_without_package
from transformers import AutoConfig, AutoModel

from alhubert import AlHubertConfig, AlHubertForCTC, AlHubertModel


REPO = Path(__file__).resolve().parents[1]


def test_saved_directory_is_complete(tmp_path):
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).save_pretrained(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert {"configuration_alhubert.py", "modeling_alhubert.py"} <= names
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_alhubert.AlHubertModel"
    assert config["auto_map"]["AutoModelForCTC"] == "modeling_alhubert.AlHubertForCTC"
    for module in ("configuration_alhubert.py", "modeling_alhubert.py"):
        imports = [
            line.split()[1]
            for line in (tmp_path / module).read_text().splitlines()
            if line.startswith(("import ", "from "))
        ]
        allowed = {"os", "pathlib", "sys", "typing", "torch", "transformers", "huggingface_hub", ""}  # and stdlib
        assert all(name.split(".")[0] in allowed for name in imports), imports


def test_with_the_package_auto_classes_load_local_code(tmp_path):
    model = AlHubertForCTC(AlHubertConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is AlHubertConfig
    assert type(AutoModel.from_pretrained(tmp_path)) is AlHubertModel


@pytest.mark.slow
def test_remote_code_loads_without_the_package(tmp_path):
    torch.manual_seed(0)
    model = AlHubertModel(AlHubertConfig(**tiny_config_kwargs(do_stable_layer_norm=True))).eval()
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    batch, mask = padded_batch()
    with torch.no_grad():
        expected = model(batch, attention_mask=mask, output_hidden_states=True)
    torch.save({"batch": batch, "mask": mask}, tmp_path / "inputs.pt")
    torch.save({"last": expected.last_hidden_state, "third": expected.hidden_states[3]}, tmp_path / "expected.pt")
    output = run_without_package(
        """
        import torch
        from transformers import AutoModel, AutoModelForCTC
        model = AutoModel.from_pretrained("model", trust_remote_code=True).eval()
        print(type(model).__name__, len(model.encoder.layers))
        inputs = torch.load("inputs.pt")
        expected = torch.load("expected.pt")
        with torch.no_grad():
            out = model(inputs["batch"], attention_mask=inputs["mask"], output_hidden_states=True)
            depth = model(inputs["batch"], attention_mask=inputs["mask"], depth=3).last_hidden_state
        torch.testing.assert_close(out.last_hidden_state, expected["last"], atol=1e-5, rtol=0)
        torch.testing.assert_close(depth, expected["third"], atol=1e-5, rtol=0)
        ctc = AutoModelForCTC.from_pretrained("model", trust_remote_code=True)
        print(type(ctc).__name__, "ok")
        """,
        cwd=tmp_path,
    )
    assert "AlHubertModel 2" in output
    assert "AlHubertForCTC ok" in output


@pytest.mark.slow
def test_import_registers_the_models_on_the_first_configuration(tmp_path):
    # `import alhubert` imports only the configurations (so the commands start fast); the first configuration made,
    # here by AutoConfig inside from_pretrained and pipeline(), registers the model classes and the pipeline task.
    AlHubertForCTC(AlHubertConfig(**tiny_config_kwargs())).save_pretrained(tmp_path / "model")
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import alhubert
        from transformers import AutoModel, AutoModelForCTC, pipeline
        assert "alhubert.models.modeling_alhubert" not in sys.modules, "import alhubert imported the model code"
        encoder, ctc = AutoModel.from_pretrained("model"), AutoModelForCTC.from_pretrained("model")
        print(type(encoder).__name__, type(ctc).__name__)
        extractor = pipeline("audio-feature-extraction", model="model")
        print(type(extractor).__name__, np.asarray(extractor(np.zeros(16000, dtype=np.float32))).ndim)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["AlHubertModel", "AlHubertForCTC", "AudioFeatureExtractionPipeline", "2"]
