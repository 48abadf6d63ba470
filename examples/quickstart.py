"""Quick start: build the small preset, save it, load it with AutoModel and extract hidden states."""

import tempfile

import torch
from transformers import AutoFeatureExtractor, AutoModel

import alhubert  # noqa: F401  (registers ALHuBERT with the Auto classes and pipelines)
from alhubert import AlHubertConfig, AlHubertModel


def main():
    with tempfile.TemporaryDirectory() as directory:
        model = AlHubertModel(AlHubertConfig.from_preset("small"))  # random weights: 2 distinct layers x 6
        model.save_pretrained(directory)
        model = AutoModel.from_pretrained(directory).eval()
        feature_extractor = AutoFeatureExtractor.from_pretrained(directory)

        waveforms = [torch.randn(10000).numpy() for _ in range(2)]  # 16 kHz
        inputs = feature_extractor(waveforms, sampling_rate=16000, padding=True, return_tensors="pt")
        with torch.no_grad():
            outputs = model(**inputs, output_hidden_states=True)
        print("last_hidden_state:", tuple(outputs.last_hidden_state.shape))
        print("hidden_states:", len(outputs.hidden_states), "entries")
        print("distinct layers stored:", len(model.encoder.layers), "| parameters:", f"{model.num_parameters():,}")


if __name__ == "__main__":
    main()
