"""Helpers shared by the tests: tiny ALHuBERT configurations that run in milliseconds on a CPU, padded batches."""

import sys

import torch


# Two processes of one script under `accelerate launch`, on the CPU: `--cpu --num_processes 2` starts ONE process in
# accelerate 1.x unless MPI is set up (`--mpirun_hostfile`); `--multi_gpu` starts two torchrun processes, which use
# gloo DDP on the CPU (the script then needs `--use_cpu true`).
ACCELERATE_TWO_CPU_PROCESSES = [
    sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no",
]  # fmt: skip


def tiny_config_kwargs(**overrides):
    """HuBERT's conv stack (400-sample receptive field, 320x stride) with 16 channels and a 32-dim, 4-head encoder."""
    kwargs = {
        "hidden_size": 32,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "num_hidden_layers": 6,
        "num_hidden_groups": 2,
        "conv_dim": (16,) * 7,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0,
        "final_dropout": 0.0,
        "layerdrop": 0.0,
        "vocab_size": 12,
    }
    kwargs.update(overrides)
    return kwargs


def perturbed_tiny_model(**overrides):
    """A tiny `AlHubertModel` (seed 0, eval mode) with its norms and biases moved away from their 1/0
    initialisation."""
    from alhubert import AlHubertConfig, AlHubertModel

    torch.manual_seed(0)
    model = AlHubertModel(AlHubertConfig(**tiny_config_kwargs(**overrides))).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer_norm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def padded_batch(lengths=(4000, 2500), seed=0):
    """Random waveforms zero-padded to the longest, with their attention mask."""
    generator = torch.Generator().manual_seed(seed)
    batch = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        batch[row, :length] = torch.randn(length, generator=generator)
        mask[row, :length] = 1
    return batch, mask


def fake_checkpoint(folder, step: int, files=("model", "state", "optimizer", "scheduler")):
    """A `checkpoint-N` folder with the files Trainer writes (`files` picks them; "torn-*" writes a torn one)."""
    import json

    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    if "model" in files:
        save_file({"weight": torch.zeros(2)}, folder / "model.safetensors")
    if "torn-model" in files:
        (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    if "state" in files:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if "torn-state" in files:
        (folder / "trainer_state.json").write_text('{"global_st')
    for name in ("optimizer", "scheduler"):
        if name in files:
            torch.save({}, folder / f"{name}.pt")
    return folder


def save_tiny_ctc(folder, seed: int = 0, **overrides):
    """A tiny random `AlHubertForCTC` with the project's character processor, saved in `folder`; its CTC blank is
    pushed down so that the greedy transcript of any clip is a non-empty string."""
    from alhubert import AlHubertConfig, AlHubertForCTC, default_feature_extractor
    from alhubert.training.ctc_vocabulary import VOCABULARY, build_processor

    torch.manual_seed(seed)
    config = AlHubertConfig(**tiny_config_kwargs(vocab_size=len(VOCABULARY), pad_token_id=0, **overrides))
    model = AlHubertForCTC(config).eval()
    with torch.no_grad():
        model.lm_head.bias[config.pad_token_id] = -100.0
    model.save_pretrained(folder)
    build_processor(default_feature_extractor(config)).save_pretrained(folder)
    return folder
