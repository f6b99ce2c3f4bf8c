"""Small helpers shared by the command line, callbacks and notebooks."""

from zoo.utils.checkpoint_io import AtomicCheckpointIO, atomic_torch_save, with_atomic_checkpoint_io
from zoo.utils.memory import heap_statistics, keep_freed_memory
from zoo.utils.tiling import Padding, crop_padding, pad_to_multiple, translate_any_size, translate_tiled

__all__ = [
    "AtomicCheckpointIO",
    "atomic_torch_save",
    "Padding",
    "crop_padding",
    "heap_statistics",
    "keep_freed_memory",
    "pad_to_multiple",
    "translate_any_size",
    "translate_tiled",
    "with_atomic_checkpoint_io",
]
