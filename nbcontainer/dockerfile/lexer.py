"""BuildKit's shell lexer (``frontend/dockerfile/shell/lex.go``) in Python.

Word expansion must be character-for-character what ``docker build`` does, so this is a
faithful port of the Go state machine, quirks included (e.g. unset variables expand to
nothing, ``${V:=w}`` is an error, Go's replace-all skips empty matches after a match).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nbcontainer.dockerfile.errors import DockerfileError

__all__ = [
    "Lexer",
    "ProcessResult",
    "build_envs",
    "go_quote",
    "go_fields",
    "go_is_space",
    "go_trim_space",
    "saturating_int",
]

_EOF = ""
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_GO_LATIN1_SPACE = frozenset("\t\n\v\f\r \x85\xa0")


def go_is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace`` (Python's ``str.isspace`` also accepts \\x1c-\\x1f)."""
    if ord(ch) < 0x100:
        return ch in _GO_LATIN1_SPACE
    return ch.isspace()


def go_trim_space(s: str) -> str:
    """Go's ``strings.TrimSpace``."""
    i, j = 0, len(s)
    while i < j and go_is_space(s[i]):
        i += 1
    while j > i and go_is_space(s[j - 1]):
        j -= 1
    return s[i:j]


def go_fields(s: str) -> list[str]:
    """Go's ``strings.Fields``: split on runs of Go whitespace."""
    out: list[str] = []
    cur: list[str] = []
    for ch in s:
        if go_is_space(ch):
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def saturating_int(text: str) -> int:
    """``int(text)`` for decimal digits with an optional sign, saturated at ±2**64: a number
    longer than any range is out of every range (and Python's int() refuses numbers of more
    than 4300 digits, leading zeros included, with a ValueError)."""
    sign = "-" if text.startswith("-") else ""
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 20:
        return -(2**64) if sign else 2**64
    return int(sign + digits)


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: the quoting the AST dump and error messages use."""
    esc = {
        "\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r",
        "\t": r"\t", "\v": r"\v", "\\": r"\\", '"': r"\"",
    }  # fmt: skip
    out = []
    for ch in s:
        if ch in esc:
            out.append(esc[ch])
        elif ch == " " or (ch.isprintable() and ch != "\x7f"):
            out.append(ch)
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\ufffd")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def build_envs(env: Iterable[str]) -> dict[str, str]:
    """``KEY=value`` strings to a dict (a bare ``KEY`` is set and empty; the last one wins)."""
    out: dict[str, str] = {}
    for entry in env:
        key, sep, value = entry.partition("=")
        out[key] = value if sep else ""
    return out


MAX_NESTING = 64


class _LexError(Exception):
    """Internal: a lexing failure before it is wrapped with the word being processed."""


@dataclass
class ProcessResult:
    """What one expansion produced: the word, its split form and the variables it looked up."""

    result: str
    words: list[str]
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


class _Words:
    """Go's ``wordsStruct``: accumulates words, splitting on unquoted whitespace."""

    __slots__ = ("word", "words", "in_word")

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if go_is_space(ch) and self.in_word:
            if self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        elif not go_is_space(ch):
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def get_words(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _ShellWord:
    """One pass over one word (Go's ``shellWord``)."""

    def __init__(self, lex: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matches: set[str] = set()
        self.nonmatches: set[str] = set()
        self.depth = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        if self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            return ch
        return _EOF

    def process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        # ${a:-${b:-${c…}}} recurses once per level: bound it (Go's growable stacks make
        # BuildKit accept any depth; Python's would end in a RecursionError).
        if self.depth >= MAX_NESTING:
            raise _LexError(f"substitutions nested more than {MAX_NESTING} deep")
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        self.depth += 1
        try:
            return self._process_stop_on(stop)
        finally:
            self.raw_escapes = saved
            self.depth -= 1

    def _process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        quotes = not self.lex.skip_process_quotes
        escape = self.lex.escape_token
        while self.peek() != _EOF:
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.get_words()
            if ch == "$" or (quotes and ch in "'\""):
                if ch == "$":
                    tmp = self.process_dollar()
                    words.add_string(tmp)
                else:
                    tmp = self.process_single_quote() if ch == "'" else self.process_double_quote()
                    words.add_raw_string(tmp)
                result.append(tmp)
                continue
            ch = self.next()
            if ch == escape:
                if self.raw_escapes:
                    words.add_raw_char(ch)
                    result.append(ch)
                ch = self.next()
                if ch == _EOF:
                    break
                words.add_raw_char(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get_words()

    def process_single_quote(self) -> str:
        result: list[str] = []
        ch = self.next()
        if self.lex.raw_quotes:
            result.append(ch)
        while True:
            ch = self.next()
            if ch == _EOF:
                raise _LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.lex.raw_quotes:
                    result.append(ch)
                return "".join(result)
            result.append(ch)

    def process_double_quote(self) -> str:
        result: list[str] = []
        ch = self.next()
        if self.lex.raw_quotes:
            result.append(ch)
        escape = self.lex.escape_token
        while True:
            peek = self.peek()
            if peek == _EOF:
                raise _LexError("unexpected end of statement while looking for matching double-quote")
            if peek == '"':
                ch = self.next()
                if self.lex.raw_quotes:
                    result.append(ch)
                return "".join(result)
            if peek == "$":
                result.append(self.process_dollar())
                continue
            ch = self.next()
            if ch == escape:
                if self.raw_escapes:
                    result.append(ch)
                nxt = self.peek()
                if nxt == _EOF:
                    continue
                if nxt in ('"', "$", escape):
                    ch = self.next()
            result.append(ch)

    def process_dollar(self) -> str:
        """``$NAME`` or ``${…}`` (the ``$`` is next): the value, or the text kept as written."""
        self.next()
        if self.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset_env:
                return "$" + name
            return value
        self.next()
        peek = self.peek()
        if peek == _EOF:
            raise _LexError("syntax error: missing '}'")
        if peek in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.process_name()
        ch = self.next()
        if ch == "}":
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset_env:
                return "${" + name + "}"
            return value
        if ch in (":", "+", "-", "?", "#", "%") and ch:
            return self._process_modifier(name, ch)
        if ch == "/":
            return self._process_substitution(name)
        raise _LexError(f"unsupported modifier ({ch or chr(0xFFFD)}) in substitution")

    def _stop_on(self, stop: str, raw_escapes: bool, missing: str) -> str:
        """The text up to ``stop``; at the end of the word, BuildKit's ``missing`` error
        (the end-of-statement error it replaces says less)."""
        try:
            word, _ = self.process_stop_on(stop, raw_escapes)
        except _LexError:
            if self.peek() == _EOF:
                raise _LexError(f"syntax error: missing {missing}") from None
            raise
        return word

    def _process_modifier(self, name: str, ch: str) -> str:
        """``${NAME<op>word}`` for ``-``/``+``/``?``/``#``/``%`` (``:`` first: null is unset)."""
        chs = ch
        null_is_unset = ch == ":"
        if null_is_unset:
            ch = self.next()
            chs += ch or "\ufffd"
        word = self._stop_on("}", bool(ch) and ch in "#%", "'}'")
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + chs + word + "}"
        unset = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if unset else value
        if ch == "+":
            return "" if unset else word
        if ch == "?":
            if not found:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("%", "#") and ch:
            greedy = bool(word) and word[0] == ch
            if greedy:
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise _LexError(f"unsupported modifier ({chs}) in substitution")

    def _process_substitution(self, name: str) -> str:
        """``${NAME/pattern/replacement}`` and ``${NAME//pattern/replacement}`` (all)."""
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._stop_on("/", True, "'/' in ${}")
        replacement = self._stop_on("}", True, "'}'")
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            return _go_replace_all(regex, value, replacement)
        m = regex.search(value)
        if m:
            value = value[: m.start()] + replacement + value[m.end() :]
        return value

    def process_name(self) -> str:
        name: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if not name and ch.isdecimal():
                while self.peek() != _EOF and self.peek().isdecimal():
                    name.append(self.next())
                return "".join(name)
            if not name and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(self.next())
        return "".join(name)

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matches.add(name)
            return self.env[name], True
        self.nonmatches.add(name)
        return "", False


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """Go's ``convertShellPatternToRegex``: ``*``/``?`` globs without brackets."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i, n = 0, len(pattern)
    while i < n:
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            if i < n and pattern[i] in "}/":
                continue
            out.append("\\")
            tok = pattern[i] if i < n else ""
            i += 1
            if tok not in ("*", "?", "\\"):
                raise _LexError(
                    f"invalid pattern ({pattern}) in substitution: "
                    f"invalid escape '\\{tok or chr(0xFFFD)}'"
                )
        elif tok in "[]{}.+()|^$":
            out.append("\\")
        out.append(re.escape(tok) if tok not in "*?\\[]{}.+()|^$" else tok)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _pattern_regex(pattern, greedy=greedy, anchored=True).match(value)
    return value[m.end() :] if m else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a glob but keep each ``\\x`` escape pair in order (``a\\*c`` -> ``c\\*a``)."""
    chars = list(pattern)
    last = len(chars) - 1
    out = [""] * len(chars)
    i = 0
    while i <= last:
        tok = chars[i]
        j = last - i
        if tok == "\\" and i != last:
            out[j - 1] = tok
            out[j] = chars[i + 1]
            i += 2
        else:
            out[j] = tok
            i += 1
    return "".join(out)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regexes find leftmost matches only, so reverse both to trim the shortest suffix.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _go_expand(template: str, match: str) -> str:
    """Go's ``Regexp.Expand`` for a pattern without groups: ``$0`` is the match, ``$$`` a ``$``."""
    out: list[str] = []
    while True:
        before, sep, after = template.partition("$")
        if not sep:
            break
        out.append(before)
        template = after
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        brace = template.startswith("{")
        k = 1 if brace else 0
        start = k
        while k < len(template) and (template[k].isalpha() or template[k].isdecimal() or template[k] == "_"):
            k += 1
        name = template[start:k]
        if not name or (brace and (k >= len(template) or template[k] != "}")):
            out.append("$")
            continue
        template = template[k + 1 :] if brace else template[k:]
        if name.isdigit() and name.isascii() and not name.strip("0"):  # $0, $00 …
            out.append(match)
    out.append(template)
    return "".join(out)


def _go_replace_all(regex: re.Pattern[str], src: str, repl: str) -> str:
    """Go's ``ReplaceAllString``: no replacement for an empty match right after a match."""
    out: list[str] = []
    last_end = 0
    pos = 0
    while pos <= len(src):
        m = regex.search(src, pos)
        if m is None:
            break
        a0, a1 = m.span()
        out.append(src[last_end:a0])
        if a1 > last_end or a0 == 0:
            out.append(_go_expand(repl, m.group(0)))
        last_end = a1
        if pos + 1 > a1:
            pos += 1
        else:
            pos = a1
    out.append(src[last_end:])
    return "".join(out)


class Lexer:
    """Expands ``$VAR``/``${VAR...}`` and removes quotes exactly as BuildKit does.

    ``process_word`` keeps whitespace (one word); ``process_words`` splits on unquoted
    whitespace, including whitespace that comes from an unquoted expansion.
    """

    def __init__(
        self,
        escape_token: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
    ) -> None:
        self.escape_token = escape_token
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env

    def process(self, word: str, env: Mapping[str, str] | Iterable[str]) -> ProcessResult:
        """Expand ``word``; raise DockerfileError with BuildKit's message on a bad word."""
        envs = env if isinstance(env, Mapping) else build_envs(env)
        sw = _ShellWord(self, word, envs)
        try:
            result, words = sw.process_stop_on(_EOF, self.raw_escapes)
        except _LexError as exc:
            raise DockerfileError(f"failed to process {go_quote(word)}: {exc}", file=None) from None
        except re.error as exc:  # pragma: no cover - patterns are escaped; kept as a guard
            raise DockerfileError(f"failed to process {go_quote(word)}: {exc}", file=None) from None
        return ProcessResult(result, words, sw.matches, sw.nonmatches)

    def process_word(self, word: str, env: Mapping[str, str] | Iterable[str]) -> str:
        """BuildKit's ``ProcessWord``: one word, quotes removed, whitespace kept."""
        return self.process(word, env).result

    def process_words(self, word: str, env: Mapping[str, str] | Iterable[str]) -> list[str]:
        """BuildKit's ``ProcessWords``: expanded and split into words."""
        return self.process(word, env).words
