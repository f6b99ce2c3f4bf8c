"""Callbacks shared by every method: sample grids, translation metrics, checkpoints in iterations, prediction files."""

from zoo.callbacks.image_grid import ImageGrid, make_translation_grid
from zoo.callbacks.metrics import MetricsCallback
from zoo.callbacks.prediction_writer import PredictionWriter
from zoo.trainer import IterationCheckpoint

__all__ = ["ImageGrid", "IterationCheckpoint", "MetricsCallback", "PredictionWriter", "make_translation_grid"]
