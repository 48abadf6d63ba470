"""Registration of ALHuBERT with Transformers' Auto classes and pipeline registry (run on `import alhubert`)."""

from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForCTC,
    AutoProcessor,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Processor,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_alhubert import AlHubertConfig
from .modeling_alhubert import AlHubertForCTC, AlHubertForSequenceClassification, AlHubertModel
from .modeling_superb import AlHubertSuperbConfig, AlHubertSuperbForCTC
from .pipeline_audio_features import AudioFeatureExtractionPipeline


# Every model class of the package, by the name `config.architectures` stores.
ARCHITECTURES = {
    model_class.__name__: model_class
    for model_class in (AlHubertModel, AlHubertForCTC, AlHubertForSequenceClassification, AlHubertSuperbForCTC)
}


def register() -> None:
    """Make `AutoModel*`, `AutoFeatureExtractor`, `AutoProcessor` and `pipeline()` know ALHuBERT (idempotent).

    Two model types: `alhubert` (the encoder and its CTC and classification heads) and `alhubert-superb` (the frozen
    encoder with the SUPERB ASR head). `import alhubert` has registered both configurations with `AutoConfig`.
    """
    AutoModel.register(AlHubertConfig, AlHubertModel, exist_ok=True)
    AutoModelForCTC.register(AlHubertConfig, AlHubertForCTC, exist_ok=True)
    AutoModelForAudioClassification.register(AlHubertConfig, AlHubertForSequenceClassification, exist_ok=True)
    AutoModelForCTC.register(AlHubertSuperbConfig, AlHubertSuperbForCTC, exist_ok=True)
    for config_class in (AlHubertConfig, AlHubertSuperbConfig):
        AutoFeatureExtractor.register(config_class, Wav2Vec2FeatureExtractor, exist_ok=True)
        AutoProcessor.register(config_class, Wav2Vec2Processor, exist_ok=True)
    PIPELINE_REGISTRY.register_pipeline(
        "audio-feature-extraction", pipeline_class=AudioFeatureExtractionPipeline, pt_model=AutoModel, type="audio"
    )
