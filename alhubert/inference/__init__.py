"""Inference: long-audio feature extraction and the `alhubert` command."""
