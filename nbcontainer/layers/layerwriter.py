"""Directory tree -> compressed layer blob in one streaming pass, with digest and diff_id.

The producer (this thread) walks the tree, packs headers and file contents into 1 MiB
blocks and hashes them (diff_id); compression runs on worker threads (isal and hashlib drop
the GIL on large buffers), and the compressed output is hashed (digest) as it is written.
Memory stays bounded by the blocks in flight (16 MiB).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..oci.digest import Digest
from .compression import Compression
from .idmap import IdMap
from .info import LayerInfo
from .pipeline import BlockPipeline, Sink
from .tarreader import ReadInto
from .tarwriter import BlockWriter, TreeOptions, write_tree


def write_layer(
    root: str | os.PathLike[str],
    sink: Sink,
    *,
    compression: Compression = Compression.GZIP,
    source_date_epoch: int | None = None,
    overlay_upper: bool = False,
    id_map: IdMap | None = None,
    exclude: Callable[[str], bool] | None = None,
    level: int | None = None,
    threads: int | None = None,
    whiteout_files: bool = False,
    owners: Mapping[bytes, tuple[int, int]] | None = None,
) -> LayerInfo:
    """Write ``root`` as a layer blob into ``sink``; the same tree gives the same bytes.

    ``overlay_upper`` converts an overlayfs upper dir (whiteout devices, opaque dirs);
    ``id_map`` shifts rootless host ids back to container ids; ``exclude`` gets each
    relative path (``"dev/null"``) and drops it (and a directory's whole subtree).
    ``level`` and ``threads`` tune compression; ``level`` is part of the output format.
    ``whiteout_files``: the tree is already in layer format (``.wh.`` files are whiteouts);
    ``owners``: every entry's owner comes from this record (layers/owners.py), root if absent.
    """
    pipe = BlockPipeline(compression, sink, level=level, threads=threads)
    try:
        blocks = BlockWriter(pipe)
        write_tree(
            Path(root), blocks, TreeOptions(source_date_epoch, overlay_upper, id_map, exclude,
                                            whiteout_files, owners)
        )
        blocks.close()
        pipe.finish()
    except BaseException:
        pipe.abort()
        raise
    return _info(pipe, compression)


def write_tar(
    root: str | os.PathLike[str],
    sink: Sink,
    *,
    source_date_epoch: int | None = None,
    overlay_upper: bool = False,
    id_map: IdMap | None = None,
    exclude: Callable[[str], bool] | None = None,
) -> LayerInfo:
    """The uncompressed deterministic tar stream of ``root`` (digest == diff_id)."""
    return write_layer(
        root,
        sink,
        compression=Compression.NONE,
        source_date_epoch=source_date_epoch,
        overlay_upper=overlay_upper,
        id_map=id_map,
        exclude=exclude,
    )


def compress_stream(
    tar_stream: ReadInto,
    sink: Sink,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    threads: int | None = None,
) -> LayerInfo:
    """An existing uncompressed tar (e.g. from :func:`open_layer`) as a layer blob, byte for
    byte (like ``docker import`` of a tarball), compressed and hashed in the same pipeline."""
    pipe = BlockPipeline(compression, sink, level=level, threads=threads)
    try:
        while True:
            buf = pipe.buffer()
            view = memoryview(buf)
            n = 0
            while n < len(buf):
                got = tar_stream.readinto(view[n:])
                if not got:
                    break
                n += got
            view.release()
            if n:
                pipe.emit(buf, n)
            else:
                pipe.release(buf)
            if n < len(buf):
                break
        pipe.finish()
    except BaseException:
        pipe.abort()
        raise
    return _info(pipe, compression)


def _info(pipe: BlockPipeline, compression: Compression) -> LayerInfo:
    diff_id = Digest("sha256", pipe.diff.hexdigest())
    uncompressed = compression is Compression.NONE
    return LayerInfo(
        digest=diff_id if uncompressed else Digest("sha256", pipe.digest.hexdigest()),
        diff_id=diff_id,
        size=pipe.size,
        uncompressed_size=pipe.uncompressed_size,
        media_type=compression.media_type,
    )
