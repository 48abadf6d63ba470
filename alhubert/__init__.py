"""ALHuBERT: parameter-sharing distilled HuBERT (DistilALHuBERT) as a native Hugging Face Transformers model.

Importing the package registers the model with the Auto classes and the `"audio-feature-extraction"` pipeline.
"""

from .models.configuration_alhubert import AlHubertConfig
from .models.modeling_alhubert import (
    AlHubertForCTC,
    AlHubertForSequenceClassification,
    AlHubertModel,
    AlHubertPreTrainedModel,
    default_feature_extractor,
)
from .models.registration import register
from .models.modeling_superb import AlHubertSuperbConfig, AlHubertSuperbForCTC

register()

from .hub.model_cards import write_card_for_folder  # noqa: E402
from .models import model_folder  # noqa: E402

# save_pretrained and push_to_hub (remote code, which cannot import the card builder) write the project's card.
model_folder.card_writer = write_card_for_folder

from .original.conversion import convert_original_checkpoint  # noqa: E402
from .original.upstream import UpstreamExpert  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AlHubertConfig",
    "AlHubertForCTC",
    "AlHubertForSequenceClassification",
    "AlHubertModel",
    "AlHubertPreTrainedModel",
    "AlHubertSuperbConfig",
    "AlHubertSuperbForCTC",
    "UpstreamExpert",
    "convert_original_checkpoint",
    "default_feature_extractor",
]
