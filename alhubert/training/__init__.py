"""Training: distillation, student initialisation, the demo teacher, training data, CTC vocabulary and offline
metrics."""
