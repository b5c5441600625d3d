"""The dive model on synthetic layers: marking, directory sizes, efficiency, filtering."""

from __future__ import annotations

from nbcontainer.analysis import (
    ADDED,
    MODIFIED,
    REMOVED,
    UNCHANGED,
    LayerEntry,
    LayerRef,
    build_tree,
    clean_command,
    filter_tree,
    image_tree,
)
from nbcontainer.oci.digest import Digest


def f(path: str, size: int = 0, mode: int = 0o644) -> LayerEntry:
    return LayerEntry(path, "f", size, mode, 0, 0, 0)


def d(path: str, mode: int = 0o755) -> LayerEntry:
    return LayerEntry(path, "d", 0, mode, 0, 0, 0)


def layer(entries, cmd: str = "RUN x"):
    return (LayerRef(Digest.of(cmd.encode()), Digest.of(b"diff " + cmd.encode()), 100, cmd),
            entries)


def node(tree, index: int, path: str):
    n = tree.layers[index].root
    for part in path.split("/"):
        n = n.children[part]
    return n


def test_marking_and_directory_sizes() -> None:
    t = build_tree([
        layer([d("etc"), f("etc/passwd", 100), d("usr"), d("usr/bin"), f("usr/bin/a", 1000),
               f("usr/bin/b", 500)], "FROM base"),
        layer([d("etc"), f("etc/passwd", 120), f("etc/new", 7), d("usr/bin", 0o700)]),
        layer([d("usr"), f("usr/.wh..wh..opq"), f("usr/keep", 3)], "RUN y"),
    ])
    assert [lt.added for lt in t.layers] == [3, 1, 1]  # files; directories are context
    assert node(t, 1, "etc/passwd").status == MODIFIED
    assert node(t, 1, "etc/new").status == ADDED
    assert node(t, 1, "etc").status == UNCHANGED  # same directory re-emitted: not a change
    assert node(t, 1, "usr/bin").status == MODIFIED  # mode changed
    assert node(t, 1, "etc").size == 127 and node(t, 1, "etc").files == 2
    # layer 2: the opaque usr/ hides everything below it
    assert node(t, 2, "usr").status == MODIFIED
    assert node(t, 2, "usr/bin").status == REMOVED
    assert node(t, 2, "usr/bin").removed_size == 1500
    assert node(t, 2, "usr/keep").status == ADDED
    assert t.layers[2].removed_size == 1500
    assert t.size == 120 + 7 + 3


def test_layer_metadata() -> None:
    t = build_tree([layer([f("a", 5)], "/bin/sh -c #(nop) COPY a /")])
    lt = t.layers[0]
    assert lt.command == "COPY a /"
    assert lt.digest == str(Digest.of(b"/bin/sh -c #(nop) COPY a /"))
    assert lt.anchor == "nbc-layer-" + lt.digest[7:19]
    assert (lt.entries, lt.size, lt.compressed_size) == (1, 5, 100)


def test_reclaimable_counts_each_lost_copy_once() -> None:
    # dive's export example shape: two paths each written twice
    t = build_tree([
        layer([f("a", 6405), f("b", 100)], "FROM x"),
        layer([f("a", 6405), f("b", 100)]),
        layer([f(".wh.b")], "RUN rm b"),
    ])
    a = next(i for i in t.inefficiencies if i.path == "a")
    b = next(i for i in t.inefficiencies if i.path == "b")
    assert (a.count, a.cumulative, a.min, a.reclaimable) == (2, 12810, 6405, 6405)
    assert (b.count, b.cumulative, b.min, b.reclaimable) == (3, 200, 0, 200)  # deleted: all
    assert t.reclaimable == 6605
    assert t.dive_wasted == 13010  # what dive would print (it counts the kept copy)
    assert t.efficiency == (6405 + 0) / (12810 + 200)
    assert [i.path for i in t.inefficiencies] == ["a", "b"]  # most reclaimable first


def test_deleted_directory_counts_its_subtree() -> None:
    t = build_tree([layer([d("opt"), f("opt/big", 10_000), f("opt/small", 5)]),
                    layer([f(".wh.opt")], "RUN rm -r /opt")])
    assert t.reclaimable == 10_005
    assert t.layers[1].removed == 1 and t.layers[1].removed_size == 10_005
    assert node(t, 1, "opt").status == REMOVED and node(t, 1, "opt").kind == "d"
    assert t.size == 0


def test_empty_image_is_fully_efficient() -> None:
    t = build_tree([])
    assert t.efficiency == 1.0 and t.reclaimable == 0


def test_clean_command() -> None:
    assert clean_command("/bin/sh -c #(nop)  CMD [\"sh\"]") == 'CMD ["sh"]'
    assert clean_command("/bin/sh -c apt-get update") == "apt-get update"
    assert clean_command("RUN /bin/sh -c make # buildkit") == "RUN make"
    assert clean_command("|2 A=1 B=2 /bin/sh -c echo $A") == "echo $A"
    assert clean_command("|x not build args") == "|x not build args"
    assert clean_command("RUN a &&\\\n  b") == "RUN a &&\\↵   b"


def test_filter_tree() -> None:
    t = build_tree([layer([d("etc"), f("etc/a", 1)]),
                    layer([f("etc/a", 2), f("etc/b", 3), f("etc/.wh.zz")], "RUN y")])
    root = t.layers[1].root
    only_added = filter_tree(root, frozenset({ADDED}))
    assert set(only_added.children["etc"].children) == {"b"}
    assert only_added.size == 3
    found = filter_tree(root, query="A")
    assert set(found.children["etc"].children) == {"a"}
    assert filter_tree(root, query="nothing").children == {}
    assert root.children["etc"].size == 5  # the original is left alone


def test_image_tree_reads_each_layer_once_and_caches_by_stack() -> None:
    stack = [layer([d("etc"), f("etc/a", 1)], "FROM s"), layer([f("etc/b", 2)], "RUN t")]
    entries = {ref.digest: e for ref, e in stack}
    reads: list[Digest] = []

    def read(digest: Digest):
        reads.append(digest)
        return entries[digest]

    refs = [ref for ref, _ in stack]
    first = image_tree(refs, read)
    assert image_tree(list(refs), read) is first  # same stack, another image: one tree
    assert reads == [ref.digest for ref in refs]
    assert first.size == 3 and [lt.command for lt in first.layers] == ["FROM s", "RUN t"]
