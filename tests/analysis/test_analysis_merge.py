"""The one whiteout merge (image-spec "Representing Changes"), and that the merged view and
the per-layer change trees agree because both use it."""

from __future__ import annotations

import random

from nbcontainer.analysis import (
    REMOVED,
    LayerEntry,
    LayerRef,
    MergedFS,
    Whiteout,
    build_tree,
    merge,
    split_whiteouts,
)
from nbcontainer.oci.digest import Digest


def f(path: str, size: int = 1) -> LayerEntry:
    return LayerEntry(path, "f", size, 0o644, 0, 0, 0)


def d(path: str) -> LayerEntry:
    return LayerEntry(path, "d", 0, 0o755, 0, 0, 0)


def link(path: str, target: str) -> LayerEntry:
    return LayerEntry(path, "l", 0, 0o777, 0, 0, 0, target)


def test_split_whiteouts() -> None:
    whiteouts, writes = split_whiteouts(
        [d("a"), f("a/.wh.b"), f("a/.wh..wh..opq"), f(".wh.top"), f("x.wh.y"), f("a/c")])
    assert whiteouts == [Whiteout("a/b"), Whiteout("a", opaque=True), Whiteout("top")]
    assert [e.path for e in writes] == ["a", "x.wh.y", "a/c"]


def test_opaque_directory_hides_lower_content_but_not_its_own_layer() -> None:
    merged = merge([
        [d("etc"), f("etc/a"), d("etc/sub"), f("etc/sub/b"), f("keep")],
        # the opaque marker may come after the layer's own entries in the tar
        [d("etc"), f("etc/new"), f("etc/.wh..wh..opq")],
    ])
    assert sorted(merged) == ["etc", "etc/new", "keep"]


def test_opaque_root() -> None:
    assert sorted(merge([[f("a"), d("b"), f("b/c")], [f(".wh..wh..opq"), f("z")]])) == ["z"]


def test_whiteout_of_a_directory_hides_its_subtree() -> None:
    fs = MergedFS()
    fs.apply([d("opt"), d("opt/x"), f("opt/x/big", 10), f("opt/small", 5), f("optional", 7)])
    hidden = fs.apply([f(".wh.opt")])
    assert [(h.path, h.kind, h.size) for h in hidden] == [("opt", "d", 15)]
    assert [e.path for e in hidden[0].entries] == ["opt", "opt/small", "opt/x", "opt/x/big"]
    assert sorted(fs.entries) == ["optional"]  # a prefix of the name is not below it
    assert "opt" not in fs.children and "opt/x" not in fs.children


def test_whiteout_of_an_implicit_directory() -> None:
    """A lower layer with ``d/e/f`` but no ``d`` or ``d/e`` entry (hand-made tars): ``.wh.d``
    hides it, and a file written over ``d`` replaces it."""
    fs = MergedFS()
    fs.apply([f("d/e/f", 3), f("d/g", 4), f("k/l/m", 1)])
    hidden = fs.apply([f(".wh.d")])
    assert [(h.path, h.kind, h.size) for h in hidden] == [("d", "d", 7)]
    assert list(fs.entries) == ["k/l/m"]
    fs.apply([f("k", 2)])
    assert list(fs.entries) == ["k"]


def test_whiteout_of_a_missing_path_hides_nothing() -> None:
    fs = MergedFS()
    fs.apply([f("a")])
    assert fs.apply([f(".wh.b")]) == []
    assert list(fs.entries) == ["a"]


def test_a_file_replacing_a_directory_takes_its_subtree() -> None:
    merged = merge([[d("lib"), d("lib/x"), f("lib/x/so", 4)], [link("lib", "usr/lib")]])
    assert list(merged) == ["lib"] and merged["lib"].kind == "l"


def test_a_directory_over_a_directory_merges() -> None:
    merged = merge([[d("lib"), f("lib/a")], [d("lib"), f("lib/b")]])
    assert sorted(merged) == ["lib", "lib/a", "lib/b"]


def test_a_directory_replacing_a_file() -> None:
    merged = merge([[f("x", 9)], [d("x"), f("x/y", 1)]])
    assert merged["x"].kind == "d" and sorted(merged) == ["x", "x/y"]


def test_whiteouts_do_not_hide_the_same_layer() -> None:
    assert sorted(merge([[f("a", 1)], [f("a", 2), f(".wh.a")]])) == ["a"]


def _reference_merge(layers: list[list[LayerEntry]]) -> dict[str, LayerEntry]:
    """The spec's rules, written the slow, obvious way."""
    merged: dict[str, LayerEntry] = {}

    def drop(target: str) -> None:
        for p in [p for p in merged if p == target or p.startswith(target + "/")]:
            del merged[p]

    for entries in layers:
        for e in entries:
            if e.name == ".wh..wh..opq":
                parent = e.path.rpartition("/")[0]
                for p in [p for p in merged if not parent or p.startswith(parent + "/")]:
                    del merged[p]
            elif e.name.startswith(".wh."):
                parent = e.path.rpartition("/")[0]
                drop((parent + "/" if parent else "") + e.name[4:])
        for e in entries:
            if e.name.startswith(".wh."):
                continue
            if e.kind != "d":
                for p in [p for p in merged if p.startswith(e.path + "/")]:
                    del merged[p]
            merged[e.path] = e
    return merged


def _random_layer(rng: random.Random, names: list[str]) -> list[LayerEntry]:
    out = []
    for _ in range(rng.randint(1, 8)):
        path = "/".join(rng.choice(names) for _ in range(rng.randint(1, 3)))
        parent, _, name = path.rpartition("/")
        kind = rng.random()
        if kind < 0.15:
            out.append(f((parent + "/" if parent else "") + ".wh." + name))
        elif kind < 0.2:
            out.append(f((parent + "/" if parent else "") + ".wh..wh..opq"))
        elif kind < 0.5:
            out.append(d(path))
        else:
            out.append(f(path, rng.randint(0, 100)))
    return out


def test_merge_matches_the_obvious_reading_of_the_spec() -> None:
    for seed in range(300):
        rng = random.Random(seed)
        layers = [_random_layer(rng, ["a", "b", "c"]) for _ in range(rng.randint(1, 5))]
        assert merge(layers) == _reference_merge(layers), seed


def _tidy_layer(rng: random.Random) -> list[LayerEntry]:
    """Like a real layer: directories are named a/b, files x/y (no file has children)."""
    out = []
    for _ in range(rng.randint(1, 8)):
        parent = "/".join(rng.choice("ab") for _ in range(rng.randint(0, 2)))
        prefix = parent + "/" if parent else ""
        kind = rng.random()
        if kind < 0.15:
            out.append(f(prefix + ".wh." + rng.choice("abxy")))
        elif kind < 0.2:
            out.append(f(prefix + ".wh..wh..opq"))
        elif kind < 0.5:
            out.append(d(prefix + rng.choice("ab")))
        else:
            out.append(f(prefix + rng.choice("xy"), rng.randint(0, 100)))
    return out


def test_the_tree_and_the_merged_view_agree() -> None:
    """Per-layer trees are built over the same merge: the image size is the merged view's,
    and what a layer marks removed is what the merge hid."""
    for seed in range(300):
        rng = random.Random(seed)
        layers = [_tidy_layer(rng) for _ in range(rng.randint(1, 4))]
        refs = [LayerRef(Digest.of(f"{seed}/{i}".encode()), None, 0, "") for i in range(len(layers))]
        tree = build_tree(list(zip(refs, layers, strict=True)))
        assert tree.size == sum(e.size for e in merge(layers).values()), seed
        fs = MergedFS()
        for lt, entries in zip(tree.layers, layers, strict=True):
            hidden = {h.path for h in fs.apply(entries)}
            marked = {n.path for n in lt.root.walk() if n.status == REMOVED}
            assert marked <= hidden and lt.removed == len(hidden), seed
            # each hidden path is shown, itself or inside a removed directory, unless the
            # layer wrote it (or a directory above it) again
            written = {e.path for e in entries}
            for p in hidden:
                above = {p.rsplit("/", n)[0] for n in range(p.count("/") + 1)}
                assert above & (marked | written), (seed, p)
