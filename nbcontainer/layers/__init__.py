"""Layer codec: deterministic tar writing, overlay conversion, compression, safe extraction.

info = write_layer(root, sink, compression=Compression.GZIP, source_date_epoch=...)
report = apply_layer(target, "blob.tar.gz")        # refuses hostile entries
apply_layers(target, [bottom, ..., top])
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
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

__getattr__ = exports(__name__, {
    "Compression": "compression",
    "LayerStream": "compression",
    "open_layer": "compression",
    "ApplyReport": "extract",
    "apply_layer": "extract",
    "apply_layers": "extract",
    "IdMap": "idmap",
    "IdRange": "idmap",
    "LayerInfo": "info",
    "diff_id_of": "inspect",
    "layer_info": "inspect",
    "verify_layer": "inspect",
    "compress_stream": "layerwriter",
    "write_layer": "layerwriter",
    "write_tar": "layerwriter",
    "sandbox_artifact": "overlay",
    "TarEntry": "tarreader",
    "TarReader": "tarreader",
})
