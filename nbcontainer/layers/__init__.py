"""Layer codec: deterministic tar writing, overlay conversion, compression, safe extraction."""

from .compression import Compression, LayerStream, open_layer
from .idmap import IdMap, IdRange
from .info import LayerInfo
from .layerwriter import source_date_epoch_from_env, write_layer, write_tar

__all__ = [
    "Compression",
    "IdMap",
    "IdRange",
    "LayerInfo",
    "LayerStream",
    "open_layer",
    "source_date_epoch_from_env",
    "write_layer",
    "write_tar",
]
