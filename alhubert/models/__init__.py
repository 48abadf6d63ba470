"""The model: configuration, modeling, SUPERB head, feature pipeline and registration — the files shipped as Hub
remote code.

Everything in this folder imports only torch, numpy, transformers, huggingface_hub (and its siblings), never the rest
of the `alhubert` package, so that each `.py` file here can be uploaded next to the weights. `save_pretrained` copies
the modules a saved model needs (Transformers' `custom_object_save`: the model's module and its relative imports).
"""
