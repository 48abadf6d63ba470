"""The model: configuration, modeling, SUPERB head, feature pipeline and registration — the files shipped as Hub remote code.

Everything in this folder imports only torch, numpy, transformers, huggingface_hub (and its siblings), never the rest
of the `alhubert` package, so that each `.py` file here can be uploaded next to the weights.
"""

from .model_folder import MODELS_DIR, remote_code_files


# The remote-code set: every module of this folder (the package `__init__` aside).
REMOTE_CODE_FILES = tuple(remote_code_files())
