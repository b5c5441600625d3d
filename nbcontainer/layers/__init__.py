"""Layer codec: deterministic tar writing, overlay conversion, compression, safe extraction.

info = write_layer(root, sink, compression=Compression.GZIP, source_date_epoch=...)
report = apply_layer(target, "blob.tar.gz")        # refuses hostile entries
apply_layers(target, [bottom, ..., top])
"""

from .compression import Compression, LayerStream, open_layer
from .extract import ApplyReport, apply_layer, apply_layers
from .idmap import IdMap, IdRange
from .info import LayerInfo
from .inspect import diff_id_of, layer_info, verify_layer
from .layerwriter import compress_stream, write_layer, write_tar
from .overlay import sandbox_artifact
from .tarreader import TarEntry, TarReader

__all__ = [
    "ApplyReport",
    "Compression",
    "IdMap",
    "IdRange",
    "LayerInfo",
    "LayerStream",
    "TarEntry",
    "TarReader",
    "apply_layer",
    "apply_layers",
    "compress_stream",
    "diff_id_of",
    "layer_info",
    "open_layer",
    "sandbox_artifact",
    "verify_layer",
    "write_layer",
    "write_tar",
]
