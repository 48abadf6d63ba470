"""The original DistilALHuBERT checkpoint format: safe loading and conversion, and the original `UpstreamExpert`
interface."""
