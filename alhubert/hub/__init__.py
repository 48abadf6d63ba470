"""The Hugging Face Hub: model cards and staged upload."""
