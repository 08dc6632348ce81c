"""Trainers for the router's models: a full bi-encoder fine-tune, a query-side adapter, a cross-encoder.

Each takes a ``RoutingDataset`` (or its path), a base model and ``TrainSettings``, and returns a
``TrainResult``. Heavy libraries are imported inside the functions, so importing this package is cheap.
"""

from agentic_router.training.trainers.common import TrainResult, TrainSettings

__all__ = ["TrainResult", "TrainSettings"]
