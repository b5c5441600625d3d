"""Syntax layer: Dockerfile text to a list of AST nodes, as BuildKit's ``parser`` package.

The splitting into instructions (continuations, comments, JSON forms, flags, heredocs) is
done by the PyPI ``dockerfile`` package, which wraps BuildKit's own Go parser. This module
adds what the wrapper does not expose: parser directives (``syntax``/``escape``/``check``
with today's rules), the ENV/LABEL separator, ONBUILD flags and heredocs, heredoc
``expand``/``chomp``, the 64 KiB line limit, NUL bytes, and source locations for errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import dockerfile as _gopkg

from nbcontainer.dockerfile.errors import DockerfileError, LintWarning
from nbcontainer.dockerfile.lexer import (
    Lexer,
    go_is_space,
    go_quote,
    go_trim_space,
    saturating_int,
)

__all__ = [
    "Directive",
    "Heredoc",
    "Node",
    "SyntaxTree",
    "chomp_heredoc_content",
    "detect_syntax",
    "dump",
    "parse_heredoc_word",
    "parse_syntax",
    "parse_words",
    "split_flags",
]

MAX_LINE_BYTES = 65535
VALID_DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$", re.ASCII)
_LEADING_TABS_RE = re.compile(r"(?m)^\t+")
_TOKEN_WS = re.compile(r"[\t\v\f\r ]+")
_HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})


@dataclass(frozen=True)
class Directive:
    """A parser directive from the top of the file (``# escape=` ``)."""

    name: str
    value: str
    line: int


@dataclass(frozen=True)
class Heredoc:
    """One here-document; ``content`` is raw (apply ``chomp`` via :attr:`text`)."""

    name: str
    content: str
    fd: int = 0
    expand: bool = True
    chomp: bool = False

    @property
    def text(self) -> str:
        """The content as the instruction sees it (leading tabs removed for ``<<-``)."""
        return chomp_heredoc_content(self.content) if self.chomp else self.content


@dataclass(frozen=True)
class Node:
    """One instruction as BuildKit's parser sees it (no expansion, no validation).

    ``args`` follow the instruction's line parser (ENV/LABEL give ``key value sep`` triples);
    ``sub`` is the wrapped instruction of an ONBUILD.
    """

    keyword: str
    args: tuple[str, ...]
    original: str
    start_line: int
    end_line: int
    flags: tuple[str, ...] = ()
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    sub: Node | None = None
    written_keyword: str = ""

    def dump(self) -> str:
        """BuildKit's ``Node.Dump()`` s-expression (without the outer parentheses)."""
        text = self.keyword
        if self.flags:
            text += " [" + " ".join(go_quote(f) for f in self.flags) + "]"
        if self.sub is not None:
            text += " (" + self.sub.dump() + ")"
        for arg in self.args:
            text += " " + go_quote(arg)
        return go_trim_space(text)


@dataclass(frozen=True)
class SyntaxTree:
    """The parsed file: nodes in order plus what the directives said."""

    nodes: tuple[Node, ...]
    directives: tuple[Directive, ...] = ()
    escape_token: str = "\\"
    lines: tuple[str, ...] = ()
    filename: str = "Dockerfile"
    warnings: tuple[LintWarning, ...] = field(default=())

    def directive(self, name: str) -> str | None:
        """The value of a directive, or None."""
        for d in self.directives:
            if d.name == name:
                return d.value
        return None


def dump(tree: SyntaxTree | list[Node] | tuple[Node, ...]) -> str:
    """The whole AST dump, one ``(...)`` per instruction (as ``TestParseCases`` compares)."""
    nodes = tree.nodes if isinstance(tree, SyntaxTree) else tree
    return "".join("(" + n.dump() + ")\n" for n in nodes).rstrip("\n") if nodes else ""


def chomp_heredoc_content(content: str) -> str:
    """BuildKit's ``ChompHeredocContent``: drop leading tabs of every line."""
    return _LEADING_TABS_RE.sub("", content)


def parse_heredoc_word(word: str) -> tuple[str, int, bool, bool] | None:
    """BuildKit's ``ParseHeredoc``: ``(name, fd, expand, chomp)`` or None if not a heredoc."""
    m = _HEREDOC_RE.match(word)
    if not m or not m.group(3):
        return None
    fd = saturating_int(m.group(1)) if m.group(1) else 0
    if fd >= 2**64:  # Go's ParseUint refuses it; the Go parser has said so already
        return None
    chomp = m.group(2) == "-"
    rest = m.group(3)
    lex = Lexer("\\", skip_unset_env=True)
    try:
        words = lex.process_words(rest, {})
    except DockerfileError:
        return None
    if len(words) != 1:
        return None
    lex.raw_quotes = True
    try:
        raw = lex.process_words(rest, {})
    except DockerfileError:
        return None
    if len(raw) != 1:
        return None
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return words[0], fd, quotes == raw_quotes, chomp


def heredocs_from_line(line: str) -> list[tuple[str, int, bool, bool]]:
    """BuildKit's ``heredocsFromLine``: every heredoc marker on a logical line, in order."""
    lex = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    try:
        words = lex.process_words(line, {})
    except DockerfileError:
        words = []
    found = []
    for word in words:
        doc = parse_heredoc_word(word)
        if doc is not None:
            found.append(doc)
    return found


class _Scan:
    """The state BuildKit's word loops (``parseWords``, ``extractBuilderFlags``) share."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.buf: list[str] = []
        self.words: list[str] = []
        self.blank_ok = False  # a quoted word may be empty ("" is a word)
        self.quote = ""

    def char(self) -> str:
        return self.text[self.pos] if self.pos < self.n else ""

    def end_word(self, keep: bool = True) -> None:
        if keep and (self.blank_ok or self.buf):
            self.words.append("".join(self.buf))
        self.buf = []
        self.blank_ok = False


_SPACES, _WORD, _QUOTE = 0, 1, 2


def parse_words(rest: str, escape_token: str = "\\") -> list[str]:
    """BuildKit's ``parseWords``: split on whitespace, keep quotes and escapes in the words."""
    sc = _Scan(rest)
    phase = _SPACES
    while sc.pos <= sc.n:
        ch = sc.char()
        if phase == _SPACES:
            if sc.pos == sc.n:
                break
            if go_is_space(ch):
                sc.pos += 1
                continue
            phase = _WORD
        if sc.pos == sc.n:
            sc.end_word()
            break
        step = _word_step if phase == _WORD else _quote_step
        phase = step(sc, ch, escape_token)
    return sc.words


def _word_step(sc: _Scan, ch: str, escape: str) -> int:
    """One character of an unquoted word (``parseWords``); returns the next phase."""
    if go_is_space(ch):
        sc.end_word()
        sc.pos += 1
        return _SPACES
    phase = _WORD
    if ch in ("'", '"'):
        sc.quote = ch
        sc.blank_ok = True
        phase = _QUOTE
    if ch == escape:
        if sc.pos + 1 == sc.n:
            sc.pos += 1
            return phase
        sc.buf.append(ch)
        sc.pos += 1
        ch = sc.text[sc.pos]
    sc.buf.append(ch)
    sc.pos += 1
    return phase


def _quote_step(sc: _Scan, ch: str, escape: str) -> int:
    """One character inside quotes (``parseWords``): quotes and escapes stay in the word."""
    phase = _WORD if ch == sc.quote else _QUOTE
    if ch == escape and sc.quote != "'":
        if sc.pos + 1 == sc.n:
            sc.pos += 1
            return _WORD
        sc.pos += 1
        sc.buf.append(ch)
        ch = sc.text[sc.pos]
    sc.buf.append(ch)
    sc.pos += 1
    return phase


def split_flags(line: str) -> tuple[str, list[str]]:
    """BuildKit's ``extractBuilderFlags``: leading ``--flags`` and the rest of the line."""
    sc = _Scan(line)
    phase = _SPACES
    while sc.pos <= sc.n:
        ch = sc.char()
        if phase == _SPACES:
            if sc.pos == sc.n:
                break
            if go_is_space(ch):
                sc.pos += 1
                continue
            if not line.startswith("--", sc.pos):
                return line[sc.pos :], sc.words
            phase = _WORD
        if sc.pos == sc.n:
            sc.end_word(keep="".join(sc.buf) != "--")
            break
        if phase == _WORD and go_is_space(ch):
            if "".join(sc.buf) == "--":  # "--" ends the flags; the rest is the command
                return line[sc.pos :], sc.words
            sc.end_word()
            sc.pos += 1
            phase = _SPACES
            continue
        step = _flag_word_step if phase == _WORD else _flag_quote_step
        phase = step(sc, ch)
    return "", sc.words


def _flag_word_step(sc: _Scan, ch: str) -> int:
    """One character of a flag word: quotes open, ``\\`` escapes, neither is kept."""
    if ch in ("'", '"'):
        sc.quote = ch
        sc.blank_ok = True
        sc.pos += 1
        return _QUOTE
    return _take(sc, ch, _WORD)


def _take(sc: _Scan, ch: str, state: int) -> int:
    """Keep ``ch`` (after ``\\``, the character it escapes) and stay in ``state``; a ``\\``
    that ends the text ends the word."""
    if ch == "\\":
        if sc.pos + 1 == sc.n:
            sc.pos += 1
            return _WORD
        sc.pos += 1
        ch = sc.text[sc.pos]
    sc.buf.append(ch)
    sc.pos += 1
    return state


def _flag_quote_step(sc: _Scan, ch: str) -> int:
    """One character inside quotes in a flag word (``\\`` escapes, even in single quotes)."""
    if ch == sc.quote:
        sc.pos += 1
        return _WORD
    return _take(sc, ch, _QUOTE)


# --------------------------------------------------------------------------- input checks


def _decode(text: str | bytes, filename: str) -> str:
    if isinstance(text, bytes | bytearray):
        data = bytes(text)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            start = data.rfind(b"\n", 0, exc.start) + 1
            col = len(data[start : exc.start].decode("utf-8", "replace")) + 1
            end = data.find(b"\n", exc.start)
            src = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
            raise DockerfileError(
                "Dockerfile is not valid UTF-8", file=filename, line=line, column=col, source=src
            ) from exc  # the cause names the offending byte
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        start = text.rfind("\n", 0, exc.start) + 1
        end = text.find("\n", exc.start)
        src = text[start : end if end >= 0 else len(text)]
        raise DockerfileError(
            "Dockerfile is not valid UTF-8",
            file=filename,
            line=line,
            column=exc.start - start + 1,
            source=src.encode("utf-8", "replace").decode("utf-8"),
        ) from exc  # the cause names the offending character
    return text


def _check_line_lengths(lines: list[str], filename: str) -> None:
    for i, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_BYTES // 4 and len(line.encode("utf-8")) > MAX_LINE_BYTES:
            raise DockerfileError(
                f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}",
                file=filename,
                line=i,
                column=1,
                source=line[:120] + "…",
            )


def parse_directives(lines: list[str], filename: str = "Dockerfile") -> list[Directive]:
    """BuildKit's ``DirectiveParser``: directives only at the top, each at most once."""
    found: list[Directive] = []
    seen: set[str] = set()
    for i, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        stripped = _lstrip_go(line)
        if not stripped.startswith("#"):
            break
        body = _lstrip_go(stripped[1:])
        m = _DIRECTIVE_RE.match(body)
        if not m:
            break
        key = m.group(1).lower()
        if key not in VALID_DIRECTIVES:
            break
        if key in seen:
            raise DockerfileError(
                f"only one {key} parser directive can be used",
                file=filename,
                line=i,
                column=len(raw) - len(_lstrip_go(raw)) + 1,
                source=raw,
            )
        seen.add(key)
        value = m.group(2)
        if key == "escape" and value not in ("`", "\\"):
            raise DockerfileError(
                f"invalid escape token '{value}' does not match ` or \\",
                file=filename,
                line=i,
                column=raw.find(value) + 1 if value in raw else None,
                source=raw,
                width=len(value),
            )
        found.append(Directive(key, value, i))
    return found


def _lstrip_go(s: str) -> str:
    i = 0
    while i < len(s) and go_is_space(s[i]):
        i += 1
    return s[i:]


# --------------------------------------------------------------------------- go bridge


def _prepare(lines: list[str], directives: list[Directive], escape: str) -> str:
    """Rewrite the directive block so the (older) Go parser applies today's directive rules."""
    out = list(lines)
    block_end = 0
    for i, line in enumerate(lines):
        if _lstrip_go(line).startswith("#"):
            block_end = i + 1
            continue
        break
    for i in range(block_end):
        body = _lstrip_go(_lstrip_go(lines[i])[1:])
        if _DIRECTIVE_RE.match(body):
            out[i] = "#"
    if directives or escape != "\\":
        out[0] = f"# escape={escape}"
    return "\n".join(out)


_NUL = "\x00"


def _placeholder(text: str) -> str:
    for cp in range(0xF0000, 0xF0100):
        ch = chr(cp)
        if ch not in text:
            return ch
    raise DockerfileError("Dockerfile contains too many unusual characters")  # pragma: no cover


def _go_parse(text: str) -> tuple:
    try:
        return _gopkg.parse_string(text)
    except _gopkg.GoParseError as exc:
        raise _GoError(str(exc)) from None
    except UnicodeDecodeError as exc:
        # BuildKit splits --flags byte by byte, so a multi-byte character whose bytes look
        # like U+0085/U+00A0 (Go whitespace) cuts it in half and leaves invalid UTF-8.
        raise _GoError(
            "invalid UTF-8 after splitting instruction flags (non-ASCII character in a --flag)"
        ) from exc


class _GoError(Exception):
    pass


def _locate(lines: list[str], message: str, escape: str, filename: str) -> DockerfileError:
    """Find which instruction made the Go parser fail, by parsing growing prefixes."""
    if message == "file with no instructions":
        return DockerfileError(message, file=filename)
    bad = _failing_line(lines, message, escape)
    if bad is None:
        return DockerfileError(message, file=filename)
    start = _instruction_start(lines, bad, escape)
    source_line, column, width = _token_position(lines, message, start, bad)
    return DockerfileError(
        message,
        file=filename,
        line=source_line,
        column=column,
        end_line=bad,
        source=lines[source_line - 1].rstrip("\r"),
        width=width,
    )


def _failing_line(lines: list[str], message: str, escape: str) -> int | None:
    """The 1-based line whose prefix first fails with ``message`` (None if none does)."""
    header = f"# escape={escape}\n" if escape != "\\" else ""

    def fails(k: int) -> bool:
        try:
            _go_parse(header + "\n".join(lines[:k]))
        except _GoError as exc:
            return str(exc) == message
        return False

    n = len(lines)
    if message == "unterminated heredoc":
        # Cutting inside an earlier, terminated heredoc also reports this; the culprit is
        # the heredoc that every longer prefix still fails on, so walk back from the end.
        k = n
        while k > 1 and fails(k - 1):
            k -= 1
        return k if fails(k) else None
    if not fails(n):
        return None
    # Instructions fail in order, so "prefix fails the same way" is monotone: bisect.
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        if fails(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _instruction_start(lines: list[str], bad: int, escape: str) -> int:
    """The first line of the instruction that ends at ``bad`` (continuations walked back,
    blank and comment lines inside it skipped)."""
    start = bad
    i = bad - 1
    while i >= 1:
        s = lines[i - 1].rstrip(" \t\r")
        st = _lstrip_go(s)
        if not st or st.startswith("#"):
            i -= 1
            continue
        if not s.endswith(escape):
            break
        start = i
        i -= 1
    return start


def _token_position(lines: list[str], message: str, start: int, bad: int) -> tuple[int, int, int]:
    """``(line, column, width)`` of the token the message quotes, else the instruction start."""
    quoted = re.search(r'"((?:[^"\\]|\\.)*)"', message)
    token = None
    if quoted:
        token = bytes(quoted.group(1), "utf-8").decode("unicode_escape", "replace")
    elif message.startswith("when using JSON array syntax"):
        token = "["
    for ln in range(start, bad + 1):
        src = lines[ln - 1]
        if token and token in src:
            return ln, src.find(token) + 1, len(token)
    src = lines[start - 1]
    return start, len(src) - len(_lstrip_go(src)) + 1, 1


def _restore(s: str, ph: str | None) -> str:
    return s.replace(ph, _NUL) if ph else s


def _node_from_command(
    cmd: object, lines: list[str], escape: str, ph: str | None, line_offset: int = 0
) -> Node:
    # The Go wrapper gives None for an empty instruction (a lone continuation at EOF).
    keyword = (cmd.cmd or "").lower()  # type: ignore[attr-defined]
    original = _restore(cmd.original or "", ph)  # type: ignore[attr-defined]
    flags = tuple(_restore(f or "", ph) for f in cmd.flags)  # type: ignore[attr-defined]
    values = tuple(_restore(v or "", ph) for v in cmd.value)  # type: ignore[attr-defined]
    start = cmd.start_line + line_offset  # type: ignore[attr-defined]
    end = cmd.end_line + line_offset  # type: ignore[attr-defined]
    logical = original.split("\n", 1)[0]
    head = _TOKEN_WS.split(go_trim_space(logical), maxsplit=1)[0]
    written = head or keyword
    sub = None
    args = values
    if keyword in ("env", "label") and values:
        rest = _TOKEN_WS.split(go_trim_space(logical), maxsplit=1)
        rest_text, _ = split_flags(rest[1] if len(rest) > 1 else "")
        words = parse_words(go_trim_space(rest_text), escape)
        legacy = bool(words) and "=" not in words[0]
        sep = "" if legacy else "="
        triples: list[str] = []
        for i in range(0, len(values) - 1, 2):
            triples += [values[i], values[i + 1], sep]
        args = tuple(triples)
    elif keyword == "onbuild" and cmd.sub_cmd:  # type: ignore[attr-defined]
        body = lines[cmd.start_line - 1 : cmd.end_line]  # type: ignore[attr-defined]
        sub = _onbuild_child(cmd, body, escape, ph, start, end)
        args = ()
    if cmd.json and re.search(r"\\u0000", logical):  # type: ignore[attr-defined]
        args = _json_args_with_nul(keyword, logical, args)
    heredocs: tuple[Heredoc, ...] = ()
    if cmd.heredocs:  # type: ignore[attr-defined]
        markers = heredocs_from_line(logical)
        docs = []
        for i, h in enumerate(cmd.heredocs):  # type: ignore[attr-defined]
            name, fd, expand, chomp = (
                markers[i] if i < len(markers) else (h.name, h.file_descriptor, True, False)
            )
            docs.append(
                Heredoc(_restore(h.name, ph), _restore(h.content, ph), h.file_descriptor, expand, chomp)
            )
        heredocs = tuple(docs)
    return Node(
        keyword=keyword,
        args=args,
        original=original,
        start_line=start,
        end_line=end,
        flags=flags,
        json=bool(cmd.json),  # type: ignore[attr-defined]
        heredocs=heredocs,
        sub=sub,
        written_keyword=written,
    )


def _json_args_with_nul(keyword: str, logical: str, args: tuple[str, ...]) -> tuple[str, ...]:
    """Re-decode a JSON form containing ``\\u0000``: the Go wrapper cuts strings at NUL."""
    parts = _TOKEN_WS.split(go_trim_space(logical), maxsplit=1)
    rest, _ = split_flags(parts[1] if len(parts) > 1 else "")
    if keyword == "healthcheck":
        rest = _TOKEN_WS.split(go_trim_space(rest), maxsplit=1)[-1]
    try:
        decoded = json.loads(rest)
    except ValueError:
        return args
    if isinstance(decoded, list) and all(isinstance(x, str) for x in decoded):
        head = args[:1] if keyword == "healthcheck" else ()
        return head + tuple(decoded)
    return args


def _onbuild_child(
    cmd: object, body: list[str], escape: str, ph: str | None, start: int, end: int
) -> Node:
    """Re-parse an ONBUILD body alone: the Go wrapper drops the child's flags and heredocs.

    ``body`` holds the ONBUILD's own source lines, the first at file line ``start``. The
    keyword is blanked out (columns kept) and what remains is parsed after a one-line header,
    so a child that is itself an ONBUILD (refused later, as BuildKit does) recurses on its
    own, shorter body.
    """
    blanked = _blank_onbuild_keyword(body, escape)
    body = blanked or body
    header = f"# escape={escape}" if escape != "\\" else "#"
    text = header + "\n" + "\n".join(body)
    if ph:
        text = text.replace(_NUL, ph)
    try:
        parsed = _go_parse(text)
    except _GoError:
        parsed = ()
    child = parsed[0] if len(parsed) == 1 else None
    # A child ONBUILD recurses only on a body whose keyword was blanked: shorter each time.
    if (
        child is not None
        and child.cmd.lower() == cmd.sub_cmd.lower()  # type: ignore[attr-defined]
        and (blanked is not None or child.cmd.lower() != "onbuild")
    ):
        # The child's line numbers count the header line: 2 is the ONBUILD's first line.
        return _node_from_command(child, [header, *body], escape, ph, line_offset=start - 2)
    sub_original = _restore(cmd.original, ph)  # type: ignore[attr-defined]
    return Node(
        keyword=cmd.sub_cmd.lower(),  # type: ignore[attr-defined]
        args=tuple(_restore(v, ph) for v in cmd.value),  # type: ignore[attr-defined]
        original=(_TOKEN_WS.split(go_trim_space(sub_original), maxsplit=1) + [""])[1],
        start_line=start,
        end_line=end,
        json=bool(cmd.json),  # type: ignore[attr-defined]
        written_keyword=cmd.sub_cmd,  # type: ignore[attr-defined]
    )


def _blank_onbuild_keyword(body: list[str], escape: str) -> list[str] | None:
    """The lines with their leading ONBUILD keyword (after blanks and line continuations)
    replaced by spaces, so columns stay; None when the lines do not start with it."""
    text = "\n".join(body)
    esc = re.escape(escape)
    m = re.match(rf"(?:\s|{esc}\r?\n)*(onbuild)(?=\s|{esc}|$)", text, re.IGNORECASE)
    if m is None:
        return None
    return (text[: m.start(1)] + " " * len(m.group(1)) + text[m.end(1) :]).split("\n")


def parse_syntax(text: str | bytes, *, filename: str = "Dockerfile") -> SyntaxTree:
    """Parse Dockerfile text into BuildKit's AST; raise DockerfileError on a syntax error."""
    text = _decode(text, filename)
    lines = text.split("\n")
    _check_line_lengths(lines, filename)
    directives = parse_directives(lines, filename)
    escape = next((d.value for d in directives if d.name == "escape"), "\\")
    prepared = _prepare(lines, directives, escape)
    ph = None
    if _NUL in prepared:
        ph = _placeholder(prepared)
        prepared = prepared.replace(_NUL, ph)
    try:
        commands = _go_parse(prepared)
    except _GoError as exc:
        message = _restore(str(exc), ph)
        if message == "file with no instructions":
            raise DockerfileError(message, file=filename) from None
        prepared_lines = prepared.split("\n")
        err = _locate(prepared_lines, str(exc), escape, filename)
        err.message = message
        if err.source is not None:
            err.source = _restore(err.source, ph)
        raise err from None
    nodes = tuple(_node_from_command(c, lines, escape, ph) for c in commands)
    return SyntaxTree(
        nodes=nodes,
        directives=tuple(directives),
        escape_token=escape,
        lines=tuple(lines),
        filename=filename,
        warnings=tuple(_continuation_warnings(nodes, lines, escape, filename)),
    )


def _continuation_warnings(
    nodes: tuple[Node, ...], lines: list[str], escape: str, filename: str
) -> list[LintWarning]:
    """BuildKit's NoEmptyContinuation: a blank line inside a continued instruction."""
    out = []
    for node in nodes:
        if node.heredocs or node.end_line <= node.start_line:
            continue
        continuing = False
        for ln in range(node.start_line, node.end_line + 1):
            raw = lines[ln - 1].rstrip("\r")
            stripped = _lstrip_go(raw)
            if continuing and not stripped:
                out.append(
                    LintWarning(
                        "NoEmptyContinuation",
                        "Empty continuation line",
                        line=ln,
                        file=filename,
                        url="https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
                    )
                )
                break
            if stripped.startswith("#") and continuing:
                continue
            continuing = raw.rstrip(" \t").endswith(escape)
    return out


def detect_syntax(data: str | bytes, key: str = "syntax") -> tuple[str, str, int] | None:
    """BuildKit's ``DetectSyntax``/``ParseDirective``: ``(ref, cmdline, line)`` or None.

    For ``syntax`` the ``//`` comment form and a JSON object are accepted too, and a leading
    ``#!`` line is skipped, so frontends can be selected from non-Dockerfile inputs.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes | bytearray) else data
    if text.startswith("\ufeff"):
        text = text[1:]
    line_no = 0
    first, sep, rest = text.partition("\n")
    if first.startswith("#!"):
        text = rest
        line_no = 1
    any_format = key == "syntax"
    prefixes = ("#", "//") if any_format else ("#",)
    for prefix in prefixes:
        seen: set[str] = set()
        for i, raw in enumerate(text.split("\n"), line_no + 1):
            line = raw.rstrip("\r") if raw.endswith("\r") else raw
            if not line.startswith(prefix):
                break
            body = _lstrip_go(line[len(prefix) :])
            m = _DIRECTIVE_RE.match(body)
            if not m or m.group(1).lower() not in VALID_DIRECTIVES:
                break
            name = m.group(1).lower()
            if name in seen:
                break
            seen.add(name)
            if name == key:
                value = m.group(2)
                return value.split(" ", 1)[0], value, i
    if any_format:
        try:
            obj = json.loads(text)
        except ValueError:
            return None
        if isinstance(obj, dict) and isinstance(obj.get(key), str):
            return obj[key], obj[key], line_no
    return None
