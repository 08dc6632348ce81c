"""Model versions: loading a trained embedder, adapter or cross-encoder, and the registry that records which
version is active. May import ``indexes``."""
