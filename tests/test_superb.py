"""The SUPERB-style ASR model (frozen upstream, weighted layer sum, BiLSTM, CTC) and its fine-tuning recipe."""

import json
from pathlib import Path

import pytest
import torch
from helpers import padded_batch, tiny_config_kwargs
from helpers_remote import run_without_package
from safetensors.torch import load_file
from test_finetune_ctc import demo_args
from transformers import AutoModelForCTC, pipeline

from alhubert import AlHubertConfig, AlHubertModel
from alhubert.models.modeling_superb import AlHubertSuperbConfig, AlHubertSuperbForCTC


REPO = Path(__file__).resolve().parents[1]
DEMO_CORPUS = REPO / "data" / "demo_corpus"


def tiny_superb(**overrides):
    config = AlHubertSuperbConfig.from_upstream(
        AlHubertConfig(**tiny_config_kwargs()), superb_lstm_size=8, superb_dropout=0.0, pad_token_id=0, **overrides
    )
    torch.manual_seed(0)
    return AlHubertSuperbForCTC(config)


def test_only_the_head_trains_and_the_upstream_stays_in_eval_mode():
    model = tiny_superb(ctc_loss_reduction="mean").train()
    assert not model.alhubert.training and model.lstm.training
    assert all(not parameter.requires_grad for parameter in model.alhubert.parameters())
    upstream_before = {name: value.clone() for name, value in model.alhubert.state_dict().items()}
    head_before = model.lstm.weight_ih_l0.clone()

    inputs, mask = padded_batch()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(inputs, attention_mask=mask, labels=torch.tensor([[1, 2, 3], [4, 5, -100]])).loss
    loss.backward()
    optimizer.step()
    assert model.layer_weights.grad is not None and model.layer_weights.grad.abs().sum() > 0
    assert not torch.equal(model.lstm.weight_ih_l0, head_before)
    for name, value in model.alhubert.state_dict().items():
        assert torch.equal(value, upstream_before[name]), name


def test_padding_does_not_change_an_utterance_logits():
    # A layer-normed feature encoder keeps the upstream padding-invariant, so any difference would be the head's.
    model = tiny_superb(feat_extract_norm="layer").eval()
    inputs, mask = padded_batch(lengths=(6000, 3000))
    batched = model(inputs, attention_mask=mask).logits
    alone = model(inputs[1:, :3000], attention_mask=mask[1:, :3000]).logits
    frames = alone.shape[1]
    torch.testing.assert_close(batched[1, :frames], alone[0], atol=1e-5, rtol=1e-4)


def test_layer_weights_start_equal_and_sum_all_hidden_states():
    model = tiny_superb()
    assert model.layer_weights.shape == (model.config.num_hidden_layers + 1,)
    assert torch.all(model.layer_weights == 0)


def test_saves_and_reloads_through_the_auto_class(tmp_path):
    model = tiny_superb().eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "alhubert-superb"
    assert config["auto_map"]["AutoModelForCTC"] == "modeling_superb.AlHubertSuperbForCTC"
    assert (tmp_path / "modeling_superb.py").is_file() and (tmp_path / "modeling_alhubert.py").is_file()
    reloaded = AutoModelForCTC.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, AlHubertSuperbForCTC) and reloaded.config.superb_lstm_size == 8
    inputs, mask = padded_batch()
    torch.testing.assert_close(reloaded(inputs, attention_mask=mask).logits, model(inputs, attention_mask=mask).logits)


@pytest.mark.slow
def test_superb_recipe_trains_evaluates_and_transcribes_through_the_pipeline(tmp_path):
    student = tmp_path / "student"
    torch.manual_seed(0)
    AlHubertModel(AlHubertConfig(**tiny_config_kwargs())).save_pretrained(student)
    from alhubert.training import run_finetune_ctc as finetune_ctc

    output_dir = tmp_path / "superb"
    trainer = finetune_ctc.main(
        demo_args(str(student), output_dir, "--recipe", "superb", "--superb_lstm_size", "16", "--weight_decay", "0")
    )
    assert trainer.state.global_step == 2
    metrics = json.loads((output_dir / "eval_results.json").read_text())
    assert metrics["eval_cer"] >= 0 and metrics["eval_wer"] >= 0

    saved = load_file(output_dir / "model.safetensors")
    initial = load_file(student / "model.safetensors")
    for name, value in initial.items():  # upstream frozen
        assert torch.equal(saved[f"alhubert.{name}"], value), name
    assert not torch.equal(saved["layer_weights"], torch.zeros_like(saved["layer_weights"]))

    recognizer = pipeline("automatic-speech-recognition", model=str(output_dir))
    assert isinstance(recognizer.model, AlHubertSuperbForCTC)
    text = recognizer(str(next((DEMO_CORPUS / "dev-clean-demo").rglob("*.flac"))))["text"]
    assert isinstance(text, str)


@pytest.mark.slow
def test_loads_as_remote_code_without_the_package(tmp_path):
    model = tiny_superb().eval()
    model.save_pretrained(tmp_path / "model")
    inputs, mask = padded_batch()
    torch.save(
        {"inputs": inputs, "mask": mask, "logits": model(inputs, attention_mask=mask).logits}, tmp_path / "io.pt"
    )
    output = run_without_package(
        """
        import torch
        from transformers import AutoModelForCTC
        model = AutoModelForCTC.from_pretrained("model", trust_remote_code=True).eval()
        io = torch.load("io.pt")
        torch.testing.assert_close(model(io["inputs"], attention_mask=io["mask"]).logits, io["logits"])
        print(type(model).__name__)
        """,
        cwd=tmp_path,
    )
    assert output.strip() == "AlHubertSuperbForCTC"
