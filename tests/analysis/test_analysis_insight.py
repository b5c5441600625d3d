"""Where the bytes are, on synthetic layers: the junk rules, waste charged per layer and rule,
our efficiency beside dive's, the base image's waste apart, directory sizes, the image at a
layer, the search, and the source lines the builder writes into the history."""

from __future__ import annotations

import pytest

from nbcontainer.analysis import (
    ADDED,
    MODIFIED,
    REMOVED,
    RULES,
    UNCHANGED,
    LayerRef,
    Source,
    build_tree,
    image_at,
    matches,
    own_from,
    parse_source,
)
from nbcontainer.analysis.junk import MATCHER, Matcher, glob_regex
from nbcontainer.builder.history import source_comment, with_sources
from nbcontainer.oci.config import History
from tests.support.synthetic import d, f, junk_stack, layer


# ---------------------------------------------------------------------- the rules
@pytest.mark.parametrize(("path", "rule"), [
    ("var/cache/apt/pkgcache.bin", "apt-cache"),
    ("var/cache/apt/archives/python3_3.11_amd64.deb", "apt-cache"),
    ("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "apt-lists"),
    ("root/.cache/pip/http-v2/a/b", "pip-cache"),
    ("home/ana/.cache/pip/wheels/x.whl", "pip-cache"),
    ("root/.npm/_cacache/index-v5/aa", "npm-cache"),
    ("usr/local/share/.cache/yarn/v6/x", "yarn-cache"),
    ("opt/conda/pkgs/numpy-1.26.tar.bz2", "conda-pkgs"),
    ("root/miniconda3/pkgs/x/info/index.json", "conda-pkgs"),
    ("var/cache/apk/APKINDEX.tar.gz", "apk-cache"),
    ("var/cache/dnf/repo.solv", "dnf-cache"),
    ("google-chrome.deb", "package-archives"),
    ("root/Python-3.12.0.tgz", "package-archives"),
    ("opt/installer.whl", "package-archives"),
    ("tmp/build.log", "tmp"),
    ("var/tmp/x/y", "tmp"),
    ("tmp/pip-req-build-1/setup.py", "pip-cache"),  # pip's build dir: the specific rule
])
def test_a_rule_matches_its_paths(path: str, rule: str) -> None:
    found = MATCHER.rule(path)
    assert found is not None and found.id == rule


@pytest.mark.parametrize("path", [
    "usr/lib/python3.11/ensurepip/_bundled/pip-23.0-py3-none-any.whl",  # venv needs these
    "usr/share/python-wheels/setuptools-66.1.1-py3-none-any.whl",
    "usr/lib/python3/dist-packages/x.py", "var/lib/dpkg/status", "etc/apt/sources.list",
    "usr/share/doc/libc6/changelog.Debian.gz", "tmp", "var/cache/debconf/templates.dat",
])
def test_ordinary_paths_are_no_junk(path: str) -> None:
    assert MATCHER.rule(path) is None


def test_rules_are_records_with_a_fix() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(r.why and r.fix and r.paths and r.title for r in RULES)
    assert glob_regex("home/*/.npm/**") == r"home/[^/]*/\.npm/.*"
    first = Matcher([RULES[0]])
    assert first.rule("var/lib/apt/lists/x") is None  # only the rules given


# ---------------------------------------------------------------------- waste and scores
def test_waste_is_charged_to_the_layer_and_rule() -> None:
    t = build_tree(junk_stack())
    ins = t.insight
    assert ins.own_from == 1  # the first layer with a Dockerfile line
    by = {(fd.rule.id, fd.layer): fd for fd in ins.findings}
    assert by["apt-cache", 1].size == 39_000 and by["apt-cache", 1].flagged
    assert by["apt-lists", 1].size == 30_000
    assert by["pip-cache", 2].size == 5_000
    deleted = by["shadowed", 2]  # usr/lib/site/x.py, deleted by the COPY's whiteout
    assert deleted.size == 1_000 and deleted.by == 3 and not deleted.flagged  # < 1 MB floor
    dup = by["duplicate", 3]  # the same bytes again at another path
    assert dup.size == 8_000 and dup.by == 2 and dup.examples == (("opt/data.bin", 8_000),)
    base = {fd.rule.id: fd for fd in ins.findings if fd.base}
    assert base["apt-lists"].size == 50_000 and base["apt-lists"].layer == 0
    assert base["shadowed"].examples == (("etc/conf", 100),) and base["shadowed"].by == 1
    own = 39_000 + 30_000 + 20_000 + 120 + 5_000 + 1_000 + 8_000 + 8_000
    waste = 39_000 + 30_000 + 5_000 + 1_000 + 8_000
    assert (ins.own_size, ins.waste, t.reclaimable) == (own, waste, waste)
    assert t.efficiency == pytest.approx(1 - waste / own)
    assert t.dive_efficiency > 0.99  # dive sees only the two paths touched twice
    assert [r.id for r, _, _ in ins.by_rule()] == ["apt-cache", "apt-lists", "duplicate",
                                                   "pip-cache", "shadowed"]


def test_a_file_rewritten_unchanged_is_the_later_layers_waste() -> None:
    """A chmod/chown RUN copies whole files up: the new copy is the waste, the fix is in
    that layer (COPY --chmod), not where the bytes were first written."""
    t = build_tree([layer([f("app/big", 5_000_000, b"x")], "COPY app", line=2),
                    layer([f("app/big", 5_000_000, b"x", mode=0o755)], "RUN chmod", line=3)])
    (finding,) = t.insight.findings
    assert (finding.rule.id, finding.layer, finding.by, finding.flagged) == \
        ("duplicate", 1, 0, True)
    assert t.reclaimable == 5_000_000 and t.efficiency == 0.5


def test_a_clean_image_flags_nothing() -> None:
    t = build_tree([layer([d("var/lib/apt/lists"), f("var/lib/apt/lists/P", 50_000)], "FROM debian"),
                    layer([f("usr/lib/libpy.so", 20_000), f("var/lib/apt/.wh.lists")],
                          "RUN apt-get install && rm -rf /var/lib/apt/lists/*", line=2)])
    assert t.insight.flagged == () and t.efficiency == 1.0
    assert t.dive_efficiency < 0.6  # dive counts the base's deleted lists
    (base,) = t.insight.findings
    assert base.base and base.rule.id == "apt-lists" and base.by == 1


def test_own_layers_without_source_lines_are_all_but_the_first() -> None:
    refs = [ref for ref, _ in junk_stack()]
    assert own_from(refs) == 1
    plain = [LayerRef(r.digest, r.diff_id, r.size, r.created_by) for r in refs]
    assert own_from(plain) == 1 and own_from(plain[:1]) == 0
    located = [plain[0], plain[1], refs[2]]
    assert own_from(located) == 2


# ---------------------------------------------------------------------- sizes
def test_directory_sizes_and_the_layers_behind_them() -> None:
    t = build_tree(junk_stack())
    dirs = t.insight.dirs
    assert dirs[""].size == t.size
    assert dirs["var/lib/apt/lists"].size == 80_000
    assert dirs["var/lib/apt/lists"].layers == ((0, 50_000), (1, 30_000))
    assert dirs["var/lib/apt/lists"].layer == 0 and dirs["var/cache"].layer == 1
    assert dirs["usr/lib"].size == 20_000  # site/ was deleted
    assert "usr/lib/site" not in dirs
    assert t.insight.subdirs[""][0] == "var"  # largest first
    assert t.insight.largest_files[0] == ("var/lib/apt/lists/Packages", 50_000, 0)
    assert [x.path for x in t.insight.largest_dirs(3)] == ["var", "var/lib", "var/lib/apt"]
    assert t.count() == (sum(1 for e in t.files.values() if e.kind != "d"),
                         sum(1 for e in t.files.values() if e.kind == "d"))


# ---------------------------------------------------------------------- the explorer's data
def test_the_image_at_a_layer_keeps_the_lower_layers_files() -> None:
    stack = junk_stack()
    t = build_tree(stack)
    root = image_at([entries for _, entries in stack[:4]], t.layers[3])
    usr = root.children["usr"]
    assert usr.children["bin"].children["python"].status == UNCHANGED  # from the base
    assert usr.children["lib"].children["site"].status == REMOVED  # this layer removed it
    assert root.children["opt"].children["data.bin"].status == ADDED
    assert root.children["opt"].status == ADDED and usr.status == MODIFIED
    assert root.size == t.size  # removed paths do not count
    at_install = image_at([entries for _, entries in stack[:2]], t.layers[1])
    assert at_install.children["etc"].children["conf"].status == MODIFIED
    assert "opt" not in at_install.children


def test_search_finds_names_and_opens_their_directories() -> None:
    root = build_tree(junk_stack()).layers[1].root
    found, opened = matches(root, "PKGCACHE")
    assert found == {"var/cache/apt/pkgcache.bin"}
    assert opened == {"var", "var/cache", "var/cache/apt"}
    assert matches(root, "") == (set(), set())


# ---------------------------------------------------------------------- source lines
def test_source_lines_round_trip_through_the_history_comment() -> None:
    assert source_comment("Dockerfile", 2, 2) == "buildkit.dockerfile.v0 Dockerfile:2"
    assert parse_source(source_comment("docker/app file", 3, 5)) == \
        Source("docker/app_file", 3, 5)
    assert str(Source("Dockerfile", 3, 5)) == "Dockerfile:3-5"
    assert parse_source("buildkit.dockerfile.v0") is None  # BuildKit's own: no line
    assert parse_source("debootstrap --variant=minbase") is None
    history = (History(created_by="base", comment=source_comment("Dockerfile", 9, 9)),
               History(created_by="RUN a", comment="buildkit.dockerfile.v0"),
               History(created_by="ENV x", comment="buildkit.dockerfile.v0", empty_layer=True))
    located = with_sources(history, {1: (2, 3), 2: (4, 4)}, "Dockerfile")
    # a base image's lines (another Dockerfile's) are dropped; this build's are written
    assert [h.comment for h in located] == ["buildkit.dockerfile.v0",
                                            "buildkit.dockerfile.v0 Dockerfile:2-3",
                                            "buildkit.dockerfile.v0 Dockerfile:4"]
    t = build_tree(junk_stack())
    assert t.layers[1].source == Source("Dockerfile", 2, 2) and t.layers[0].source is None
