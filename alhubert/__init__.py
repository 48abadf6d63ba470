"""ALHuBERT: parameter-sharing distilled HuBERT (DistilALHuBERT) as a native Hugging Face Transformers model.

Importing the package registers ALHuBERT with Transformers: its two configurations with `AutoConfig` at once, and the
model classes (`AutoModel`, `AutoModelForCTC`, `AutoModelForAudioClassification`), feature extractor, processor and
the `"audio-feature-extraction"` pipeline the moment the first ALHuBERT configuration is made, which every
`from_pretrained`, `from_config` and `pipeline()` call does before it looks a class up. The public names load on
first use, so `import alhubert` (and every `alhubert ... --help`) does not import the model code.
"""

import importlib

from transformers import AutoConfig as _AutoConfig

from .models import configuration_alhubert as _configuration
from .models.configuration_alhubert import AlHubertConfig, AlHubertSuperbConfig


__version__ = "0.1.0"

# Public name -> module (relative to this package) that defines it.
_LAZY_NAMES = {
    "AlHubertForCTC": ".models.modeling_alhubert",
    "AlHubertForSequenceClassification": ".models.modeling_alhubert",
    "AlHubertModel": ".models.modeling_alhubert",
    "AlHubertPreTrainedModel": ".models.modeling_alhubert",
    "default_feature_extractor": ".models.modeling_alhubert",
    "AlHubertSuperbForCTC": ".models.modeling_superb",
    "register": ".models.registration",
    "UpstreamExpert": ".original.upstream",
    "convert_original_checkpoint": ".original.conversion",
}

__all__ = ["AlHubertConfig", "AlHubertSuperbConfig", *sorted(_LAZY_NAMES)]


def __getattr__(name: str) -> object:
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module 'alhubert' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY_NAMES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


def _register_with_transformers():
    """Register the model classes, feature extractors and pipeline task (see the module docstring)."""
    from .models.registration import register

    register()


_AutoConfig.register(AlHubertConfig.model_type, AlHubertConfig, exist_ok=True)
_AutoConfig.register(AlHubertSuperbConfig.model_type, AlHubertSuperbConfig, exist_ok=True)
_configuration.on_first_config = _register_with_transformers
