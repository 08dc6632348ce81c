"""Turning text into vectors: the sentence-transformers embedder, the ONNX question encoder, and the CPU
facts its numbers depend on. May import the base modules of ``indexes`` (errors, schema, config, atomic)."""
