"""What an image contains, in the terminal: ``layers`` (dive's layer list, the junk found with
its fixes, the biggest directories and files), ``history`` (docker's) and ``check`` (dive's CI
mode: a table and exit code 1 when a rule fails). The same analysis as the notebook views."""

from __future__ import annotations

import argparse
import shutil

from .. import api, humanize, options
from ..analysis import FAIL, PASS, SKIP, CheckReport, ImageTree
from ..image import Image
from .command import Command, spec
from .render import out, table

BAR = 24  # columns of a layer's size bar


def _bar(size: int, waste: int, biggest: int) -> str:
    """``█████▒▒▒``: the layer's size, the reclaimable part shaded."""
    n = round(BAR * size / biggest) if biggest else 0
    lost = min(n, round(BAR * waste / biggest)) if biggest else 0
    return "█" * (n - lost) + "▒" * lost


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def render_layers(image: Image, tree: ImageTree, width: int = 100) -> list[str]:
    ins = tree.insight
    files, dirs = tree.count()
    lines = [image.summary(),
             f"{humanize.plural(files, 'file')}, "
             f"{humanize.plural(dirs, 'directory', 'directories')}, {humanize.size(tree.size)} "
             f"unpacked · efficiency {tree.efficiency:.1%} · reclaimable "
             f"{humanize.size(tree.reclaimable)} · dive's score {tree.dive_efficiency:.1%}", ""]
    waste = {i: 0 for i in range(len(tree.layers))}
    for f in ins.findings:
        if not f.base:
            waste[f.layer] += f.size
    biggest = max((lt.size for lt in tree.layers), default=0)
    rows = [["#", "SIZE", "FILES", "+", "~", "-", "SIZE" + " " * (BAR - 4), "CREATED BY"]]
    cmd_width = max(20, width - 60 - BAR)
    for lt in tree.layers:
        cmd = _short(lt.command or "(no history)", cmd_width)
        if lt.source:
            cmd += f" ({lt.source})"
        if lt.index < ins.own_from:
            cmd += " [base]"
        rows.append([f"{lt.index}", humanize.size(lt.size), f"{lt.files:,}", f"{lt.added:,}",
                     f"{lt.modified:,}", f"{lt.removed:,}",
                     _bar(lt.size, waste[lt.index], biggest).ljust(BAR), cmd])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(c.rjust(w) if 0 < i < 6 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    lines.append("  ▒ = reclaimable: junk, overwritten or duplicated bytes of the image's own "
                 "layers")
    lines += ["", *render_junk(tree)]
    lines += ["", "Largest directories:"]
    lines += [f"  {humanize.size(d.size):>7}  /{d.path}  (mostly layer {d.layer})"
              for d in ins.largest_dirs(8)]
    lines += ["Largest files:"]
    lines += [f"  {humanize.size(n):>7}  /{p}  (layer {layer})"
              for p, n, layer in ins.largest_files[:8]]
    return lines


def render_junk(tree: ImageTree) -> list[str]:
    ins = tree.insight
    own = ins.by_rule()
    if not own:
        lines = ["No junk found in the image's own layers."]
    else:
        lines = ["Junk and waste in the image's own layers (fix the Dockerfile to reclaim it):"]
        for rule, total, found in own:
            floor = "" if any(f.flagged for f in found) else " (below its noise floor)"
            lines.append(f"  {humanize.size(total):>7}  {rule.title}{floor}")
            for f in found:
                lt = tree.layers[f.layer]
                where = f"layer {f.layer}" + (f" ({lt.source})" if lt.source else "")
                example = ", ".join(f"/{p} {humanize.size(n)}" for p, n in f.examples[:2])
                lines.append(f"           {humanize.size(f.size)} in {where}: "
                             f"{_short(lt.command, 50)}; {humanize.plural(f.files, 'file')}, "
                             f"e.g. {example}")
            lines.append(f"           fix: {rule.fix}")
    base = ins.by_rule(base=True)
    if base:
        total = sum(t for _, t, _ in base)
        titles = ", ".join(f"{rule.title} {humanize.size(t)}" for rule, t, _ in base)
        lines.append(f"In the base image (not counted: a later layer cannot remove it): "
                     f"{humanize.size(total)}: {titles}")
    return lines


def render_check(report: CheckReport) -> list[str]:
    lines = [f"image: {report.image}",
             f"  efficiency: {report.efficiency:.1%} (dive's score {report.dive_efficiency:.1%})",
             f"  wastedBytes: {humanize.size(report.wasted)} ({report.wasted:,} bytes, in the "
             "image's own layers)",
             f"  userWastedPercent: {report.user_wasted_percent:.1%}",
             f"rules: {report.rules.source}", ""]
    rows = [["RESULT", "RULE", "VALUE", "LIMIT", "WHERE / FIX"]]
    rows += [[r.status, r.rule, r.value, r.limit, r.detail] for r in report.results]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))
                     + "  " + r[4])
    count = {s: sum(1 for r in report.results if r.status == s) for s in (PASS, FAIL, SKIP)}
    lines.append(f"Result: {'PASS' if report.passed else 'FAIL'} [total {len(report.results)}]"
                 f" [passed {count[PASS]}] [failed {count[FAIL]}] [skipped {count[SKIP]}]")
    return [line.rstrip() for line in lines]


def _check(a: argparse.Namespace, image: Image) -> int:
    rules = api.ci_rules(a.ci_config, ignore=a.ignore, **options.check_thresholds(a))
    report = api.check(image, rules)
    for line in render_check(report):
        out(line)
    return 0 if report.passed else 1


def _run_layers(a: argparse.Namespace, st: api.Store) -> int:
    image = api.image(a.ref, store=st)
    if a.check:
        return _check(a, image)
    width = shutil.get_terminal_size((120, 40)).columns
    for line in render_layers(image, image.tree(), width):
        out(line)
    return 0


def _run_check(a: argparse.Namespace, st: api.Store) -> int:
    return _check(a, api.image(a.ref, store=st))


def _conf_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="IMAGE")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.add_argument("-H", "--human", type=options.bool_value, default=True, metavar="BOOL",
                   help="sizes and dates in human-readable form (default true)")


def _run_history(a: argparse.Namespace, st: api.Store) -> int:
    """docker's ``history``: newest first; the image id on the top entry only; sizes are
    the layers' unpacked sizes, 0B for entries that made no layer."""
    image = api.image(a.ref, store=st)
    ident = str(image.id) if a.no_trunc else image.id.short
    if a.quiet:
        out(ident)
        return 0
    sizes = iter([lt.size for lt in image.tree().layers])
    rows = []
    for h in image.history:
        size = 0 if h.empty_layer else next(sizes, 0)
        created_by = h.created_by or ""
        if not a.no_trunc:
            created_by = _short(created_by.replace("\n", " "), 45)
        created = humanize.ago(h.created) if a.human else (h.created or "")
        rows.append(["<missing>", created, created_by,
                     humanize.size(size) if a.human else str(size), h.comment or ""])
    rows.reverse()
    if rows:
        rows[0][0] = ident
    table([["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], *rows])
    return 0


COMMANDS: list[Command] = [
    Command("layers", "show an image's layers, the junk in them and where its bytes are",
            spec(options.add_layers_args), _run_layers),
    Command("history", "show the history of an image", _conf_history, _run_history),
    Command("check", "check an image against dive's CI rules and the junk rules "
            "(exit code 1 when one fails)", spec(options.add_check_args), _run_check),
]
