"""Inference: long-audio feature extraction, ONNX export and the `alhubert` command."""
