"""Hypothesis strategies for OCI and Docker documents: valid ones (that must parse and
serialize back to exactly the same JSON, unknown fields included) and broken ones, each with
the field that breaks it (the error must name it).

The schema below is the image-spec's (and Docker's for the config's ``config`` object), as a
table: broken documents are made by replacing the value at a path the table types with a
value of another type, or by removing a required field.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from nbcontainer.oci import mediatypes as mt

# ---------------------------------------------------------------------------- the schema
STR, MEDIA, DIGEST, SIZE, INT, BOOL, TIME, STRMAP, SET = (
    "str", "media", "digest", "size", "int", "bool", "time", "strmap", "set")
PLATFORM = {"architecture": STR, "os": STR, "variant": STR, "os.version": STR,
            "os.features": [STR]}
DESCRIPTOR: dict[str, Any] = {"mediaType": MEDIA, "digest": DIGEST, "size": SIZE,
                              "urls": [STR], "annotations": STRMAP, "platform": PLATFORM,
                              "artifactType": MEDIA, "data": "data"}
MANIFEST = {"schemaVersion": "two", "mediaType": MEDIA, "config": DESCRIPTOR,
            "layers": [DESCRIPTOR], "annotations": STRMAP, "subject": DESCRIPTOR,
            "artifactType": MEDIA}
INDEX = {"schemaVersion": "two", "mediaType": MEDIA, "manifests": [DESCRIPTOR],
         "annotations": STRMAP, "subject": DESCRIPTOR, "artifactType": MEDIA}
HEALTHCHECK = {"Test": [STR], "Interval": INT, "Timeout": INT, "StartPeriod": INT,
               "StartInterval": INT, "Retries": INT}
CONTAINER = {"User": STR, "ExposedPorts": SET, "Env": [STR], "Entrypoint": [STR], "Cmd": [STR],
             "Volumes": SET, "WorkingDir": STR, "Labels": STRMAP, "StopSignal": STR,
             "ArgsEscaped": BOOL, "Healthcheck": HEALTHCHECK, "OnBuild": [STR], "Shell": [STR]}
HISTORY = {"created": TIME, "created_by": STR, "author": STR, "comment": STR,
           "empty_layer": BOOL}
CONFIG = {"architecture": STR, "os": STR, "variant": STR, "os.version": STR,
          "os.features": [STR], "created": TIME, "author": STR, "config": CONTAINER,
          "rootfs": {"type": STR, "diff_ids": [DIGEST]}, "history": [HISTORY]}
REQUIRED = {
    id(MANIFEST): ("schemaVersion", "config"), id(INDEX): ("schemaVersion", "manifests"),
    id(DESCRIPTOR): ("mediaType", "digest", "size"), id(PLATFORM): ("architecture", "os"),
    id(CONFIG): ("architecture", "os", "rootfs"), id(CONFIG["rootfs"]): ("type", "diff_ids"),
}

# ---------------------------------------------------------------------------- valid documents
_word = st.text("abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=12)
_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
_unknown = st.dictionaries(st.sampled_from(["x-extra", "io.example/thing", "moby.custom"]),
                           st.one_of(st.integers(), _text, st.lists(st.integers(), max_size=2),
                                     st.dictionaries(_word, _word, max_size=2)), max_size=2)
_digests = st.binary(max_size=8).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest())
_annotations = st.dictionaries(_text, _text, min_size=1, max_size=3)
_times = st.sampled_from(["2024-01-01T00:00:00Z", "1970-01-01T00:00:00.123456789Z",
                          "2023-06-30T12:34:56+02:00", "0001-01-01T00:00:00Z"])
_platforms = st.fixed_dictionaries(
    {"architecture": st.sampled_from(["amd64", "arm64", "386", "ppc64le", "s390x"]),
     "os": st.sampled_from(["linux", "windows", "freebsd"])},
    optional={"os.version": _word, "os.features": st.lists(_word, min_size=1, max_size=2)})


def _with(base: dict[str, Any], optional: dict[str, st.SearchStrategy[Any]]
          ) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: st.just(v) if not isinstance(v, st.SearchStrategy) else v
                                  for k, v in base.items()}, optional=optional)


@st.composite
def descriptors(draw: st.DrawFn, media_types: list[str] | None = None,
                platform: bool = False) -> dict[str, Any]:
    inline = draw(st.booleans()) and not platform
    data = draw(st.binary(max_size=16)) if inline else None
    d: dict[str, Any] = {
        "mediaType": draw(st.sampled_from(media_types or [mt.OCI_LAYER_GZIP, mt.OCI_LAYER,
                                                          mt.OCI_LAYER_ZSTD,
                                                          mt.DOCKER_LAYER_GZIP])),
        "digest": "sha256:" + hashlib.sha256(data).hexdigest() if data is not None
        else draw(_digests),
        "size": len(data) if data is not None else draw(st.integers(0, 2**40)),
    }
    if data is not None:
        d["data"] = base64.b64encode(data).decode()
    d.update(draw(_with({}, {"annotations": _annotations,
                             "urls": st.lists(st.just("https://example.com/b"), min_size=1,
                                              max_size=2),
                             "artifactType": st.just("application/vnd.example+json")})))
    if platform:
        d["platform"] = draw(_platforms)
    d.update(draw(_unknown))
    return d


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    docker = draw(st.booleans())
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        "config": draw(descriptors([mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG])),
        "layers": draw(st.lists(descriptors(), max_size=4)),
    }
    doc.update(draw(_with({}, {"annotations": _annotations,
                               "subject": descriptors([mt.OCI_MANIFEST]),
                               "artifactType": st.just("application/vnd.example+json")})))
    doc.update(draw(_unknown))
    return doc


@st.composite
def indexes(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": draw(st.sampled_from([mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST])),
        "manifests": draw(st.lists(descriptors([mt.OCI_MANIFEST, mt.DOCKER_MANIFEST],
                                               platform=True), max_size=4)),
    }
    doc.update(draw(_with({}, {"annotations": _annotations})))
    doc.update(draw(_unknown))
    return doc


_string_lists = st.lists(_text, min_size=1, max_size=3)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    healthcheck = draw(_with({"Test": ["CMD-SHELL", "true"]},
                             {k: st.integers(1, 2**40) for k in HEALTHCHECK if k != "Test"}))
    healthcheck.update(draw(_unknown))
    container = draw(_with({}, {
        "User": _word, "WorkingDir": st.just("/srv"), "StopSignal": st.just("SIGTERM"),
        "Env": st.lists(_word.map(lambda w: f"{w}=1"), min_size=1, max_size=3),
        "Entrypoint": _string_lists, "Cmd": _string_lists, "OnBuild": _string_lists,
        "Shell": _string_lists, "ArgsEscaped": st.booleans(), "Labels": _annotations,
        "ExposedPorts": st.dictionaries(st.sampled_from(["80/tcp", "53/udp"]), st.just({}),
                                        min_size=1),
        "Volumes": st.dictionaries(st.sampled_from(["/data", "/var"]), st.just({}),
                                   min_size=1),
        "Healthcheck": st.just(healthcheck),
    }))
    container.update(draw(_unknown))
    history = draw(st.lists(_with({}, {"created": _times, "created_by": _text, "author": _text,
                                       "comment": _text, "empty_layer": st.just(True)}),
                            max_size=4))
    for h in history:
        h.update(draw(_unknown))
    doc = draw(_with({"architecture": draw(st.sampled_from(["amd64", "arm64"])), "os": "linux",
                      "config": container,
                      "rootfs": {"type": "layers", "diff_ids": draw(st.lists(_digests,
                                                                             max_size=4))}},
                     {"created": _times, "author": _text, "variant": st.just("v8"),
                      "os.version": _word, "os.features": st.lists(_word, min_size=1,
                                                                    max_size=2)}))
    if history:
        doc["history"] = history
    doc.update(draw(_unknown))
    return doc


# ---------------------------------------------------------------------------- broken ones
@dataclass(frozen=True)
class Broken:
    doc: Any
    where: str  # what the error must start with: "config.history[3]" …
    why: str  # the change, for the failure message


_WRONG = {
    STR: [5, [], {}, True], MEDIA: [5, ["a/b"], "not a media type", "a/b/c", ""],
    DIGEST: [5, "sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64],
    SIZE: ["5", 1.5, -1, True, 2**63, None], INT: ["5", 1.5, -1, True, []],
    BOOL: ["true", 1, []], TIME: ["yesterday", 5, "2024-01-01 00:00:00"],
    STRMAP: ["a=b", ["a"], 5], SET: [["80/tcp"], "80/tcp", 5], "data": [5, "***", "YQ=="],
    "two": [1, "2", 2.0, True, None],
}
_WRONG_LIST = ["a", 5, {}]
_WRONG_OBJECT = ["a", 5, [], True]


def _render(path: list[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f"[{p[0]!r}]" if isinstance(p, tuple) else
                                                     f".{p}")
    return out


def _paths(doc: Any, schema: Any, path: list[Any]) -> list[tuple[list[Any], Any]]:
    """Every (path, schema) the table types in ``doc``."""
    out = [(path, schema)]
    if isinstance(schema, dict) and isinstance(doc, dict):
        for key, sub in schema.items():
            if key in doc:
                out += _paths(doc[key], sub, [*path, key])
    elif isinstance(schema, list) and isinstance(doc, list):
        for i, item in enumerate(doc):
            out += _paths(item, schema[0], [*path, i])
    elif schema in (STRMAP, SET) and isinstance(doc, dict):
        out += [([*path, (k,)], "value-of-" + schema) for k in doc]
    return out


def _set(doc: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    *parent, last = path
    node = doc
    for p in parent:
        node = node[p[0] if isinstance(p, tuple) else p]
    node[last[0] if isinstance(last, tuple) else last] = value
    return doc


@st.composite
def broken(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]], schema: dict[str, Any],
           name: str) -> Broken:
    """A valid document with one field made wrong: the error must name ``where``."""
    doc = draw(valid)
    candidates = _paths(doc, schema, [])
    path, kind = draw(st.sampled_from(candidates[1:] or candidates))
    required = REQUIRED.get(id(_schema_at(schema, path[:-1])), ()) if path else ()
    if path and not isinstance(path[-1], int | tuple) and path[-1] in required and \
            draw(st.booleans()):
        parent = path[:-1]
        node = doc
        for p in parent:
            node = node[p]
        del node[path[-1]]
        return Broken(doc, f"{name}{_render(parent)}: missing required field {path[-1]!r}",
                      f"removed {_render(path)}")
    if isinstance(kind, list):
        wrong = draw(st.sampled_from(_WRONG_LIST))
    elif isinstance(kind, dict):
        wrong = draw(st.sampled_from(_WRONG_OBJECT))
    elif kind.startswith("value-of-"):
        wrong = draw(st.sampled_from([5, None, []] if kind.endswith(STRMAP) else ["x", 5]))
    else:
        wrong = draw(st.sampled_from(_WRONG[kind]))
    if wrong is None and kind not in (SIZE, "two") and not kind.startswith("value-of-"):
        wrong = 5
    doc = _set(doc, path, wrong)
    return Broken(doc, f"{name}{_render(path)}", f"{_render(path)} = {wrong!r}")


def _schema_at(schema: Any, path: list[Any]) -> Any:
    for p in path:
        if isinstance(p, int):
            schema = schema[0]
        elif isinstance(p, tuple):
            return None
        else:
            schema = schema[p]
    return schema
