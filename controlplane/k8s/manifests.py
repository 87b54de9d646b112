"""Read Kubernetes manifests the way ``kubectl apply -f`` does.

Files, directories (recursively, ``.yaml``/``.yml``/``.json``, in name order), multi-document
YAML, JSON, ``kind: List`` and the typed ``*List`` kinds (``PodList``…), and objects given
inline in a scenario. Every object keeps where it came from (file, line, position inside a
list) so that a later validation error can point at the line of the bad field.

YAML is read with a loader that refuses what a careless or hostile file could do to us:
duplicate keys (PyYAML silently keeps the last), and alias expansion beyond a budget
(the "billion laughs" bomb: the composed graph is counted with
aliases expanded, up to a budget, before anything walks it).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controlplane.errors import InputError
from controlplane.k8s.leniency import forgive

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 64 * 1024 * 1024

try:  # the C loader is several times faster on large manifest sets
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _BaseLoader = yaml.SafeLoader


@dataclass(frozen=True)
class Source:
    """Where an object was read: file, line of the object, and its place inside a List."""

    file: str
    line: int | None = None
    node: yaml.Node | None = field(default=None, compare=False, repr=False)
    prefix: tuple[str | int, ...] = ()

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the field at ``loc`` inside this object (1-based), as near as known."""
        if self.node is None:
            return self.line
        node = self.node
        line = node.start_mark.line + 1
        for part in (*self.prefix, *loc):
            found = _child(node, part)
            if found is None:
                break
            line, node = found
        return line

    def within(self, *parts: str | int) -> "Source":
        """The source of a nested object (an item of a List, an inline object of a step)."""
        return Source(self.file, self.line_of(parts), self.node, (*self.prefix, *parts))


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    """The child at ``part`` and the line that names it (a key's own line for a mapping)."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key.start_mark.line + 1, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


@dataclass
class Manifest:
    """One Kubernetes (or ``vrsim.tf/v1``) object as read, with its source."""

    obj: dict[str, Any]
    source: Source

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    def error(self, message: str, loc: Sequence[str | int] = ()) -> InputError:
        """An InputError pointing at ``loc`` in this object."""
        from controlplane.errors import format_path

        return InputError(
            message,
            file=self.source.file,
            path=format_path(loc) or None,
            line=self.source.line_of(loc),
        )


class _GuardedLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader that rejects duplicate keys (PyYAML would keep the last silently).
    Merge keys (``<<: *base``) work as kubectl reads them: the mapping's own keys win."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged in by the safe constructor, under the mapping's own keys
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


MAX_NODES_PER_DOCUMENT = 2_000_000
#: Deeper than any real object; far enough below Python's recursion limit that copying,
#: validating or printing an accepted object cannot fail with RecursionError.
MAX_DEPTH = 100


def _count_nodes(node: yaml.Node, budget: int, file: str) -> int:
    """Count nodes reachable from ``node`` (aliases counted each time) up to ``budget``.

    Also refuses nesting beyond :data:`MAX_DEPTH`, at the line where it goes too deep.
    """
    stack: list[tuple[yaml.Node, int]] = [(node, 1)]
    count = 0
    while stack:
        current, depth = stack.pop()
        count += 1
        if count > budget:
            return count
        if isinstance(current, (yaml.MappingNode, yaml.SequenceNode)) and depth > MAX_DEPTH:
            raise InputError(f"nested more than {MAX_DEPTH} levels deep", file=file, line=current.start_mark.line + 1)
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in current.value)
    return count


def _check_json_depth(data: Any, file: str) -> None:
    """JSON has no aliases, but may nest deep enough to break whatever walks it later."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, (dict, list)) and depth > MAX_DEPTH:
            raise InputError(f"nested more than {MAX_DEPTH} levels deep", file=file)
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)


def parse_yaml_documents(text: str, file: str) -> Iterator[tuple[Any, yaml.Node]]:
    """Yield ``(data, node)`` per YAML document; errors become InputError with the line."""
    loader = _GuardedLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if _count_nodes(node, MAX_NODES_PER_DOCUMENT, file) > MAX_NODES_PER_DOCUMENT:
                raise InputError(
                    f"document expands to more than {MAX_NODES_PER_DOCUMENT} YAML nodes (alias bomb?)",
                    file=file,
                    line=node.start_mark.line + 1,
                )
            data = loader.construct_document(node)
            yield data, node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
            problem = f"a tab at column {mark.column + 1}: YAML indents with spaces, never tabs"
        raise InputError(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.reader.ReaderError as exc:
        # a control character: not a MarkedYAMLError, and its text spans two lines
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise InputError(f"invalid YAML: unacceptable character {char}: {exc.reason}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}", file=file) from None
    except RecursionError:
        raise InputError("invalid YAML: nesting is too deep", file=file) from None
    finally:
        loader.dispose()


STDIN = "-"  # ``-f -``: the manifests come on standard input, as with kubectl
STDIN_NAME = "<stdin>"


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def _bounded(stream: Any, file: str) -> bytes:
    """At most MAX_FILE_BYTES from ``stream``, counted while reading (a size the file system
    reports is no bound: a device reports 0)."""
    raw = stream.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"more than the {MAX_FILE_BYTES // (1024 * 1024)} MiB a manifest file may hold: split it into several files", file=file)
    return raw


def read_text(path: Path) -> str:
    """Read a manifest file (or ``-``, standard input) as UTF-8: regular files only, at most
    MAX_FILE_BYTES, with a clear error for binary text, FIFOs, devices and symlink loops."""
    file = str(path)
    if file == STDIN:
        file = STDIN_NAME
        raw = _bounded(sys.stdin.buffer, file)
    else:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            what = "a symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror
            raise InputError(f"cannot read: {what}", file=file) from None
        if not stat.S_ISREG(mode):
            raise InputError(f"cannot read {_file_kind(mode)}: give manifest files, folders of them, or - for standard input", file=file)
        try:
            with open(path, "rb") as stream:
                raw = _bounded(stream, file)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=file) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", file=file, line=line) from None
    if "\x00" in text:
        raise InputError("not a text file (contains NUL bytes)", file=file)
    return text


def parse_manifest_text(text: str, file: str) -> list[Manifest]:
    """Objects of one file's text: YAML (multi-document) or JSON."""
    out: list[Manifest] = []
    if file.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno) from None
        except RecursionError:
            raise InputError(f"nested more than {MAX_DEPTH} levels deep", file=file) from None
        _check_json_depth(data, file)
        out.extend(expand_object(data, Source(file, 1)))
        return out
    for data, node in parse_yaml_documents(text, file):
        if data is None:
            continue
        out.extend(expand_object(data, Source(file, node.start_mark.line + 1, node)))
    return out


def expand_object(data: Any, source: Source) -> list[Manifest]:
    """One parsed document → its objects (a List becomes its items)."""
    if isinstance(data, list):
        out: list[Manifest] = []
        for i, item in enumerate(data):
            out.extend(expand_object(item, source.within(i)))
        return out
    if not isinstance(data, dict):
        raise InputError(
            f"expected a Kubernetes object (a mapping with apiVersion and kind), found {type(data).__name__}",
            file=source.file,
            line=source.line,
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError("object has no kind", file=source.file, path="kind", line=source.line)
    api_version = data.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise InputError("object has no apiVersion", file=source.file, path="apiVersion", line=source.line)
    if kind.endswith("List") and "items" in data:
        items = data.get("items")
        if items is None:
            return []
        if not isinstance(items, list):
            raise InputError("items must be a list", file=source.file, path="items", line=source.line_of(("items",)))
        item_kind = kind[: -len("List")]
        out = []
        for i, item in enumerate(items):
            item_source = source.within("items", i)
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"kind": item_kind, **item}
            if isinstance(item, dict) and "apiVersion" not in item and item_kind:
                item = {"apiVersion": api_version, **item}
            out.extend(expand_object(item, item_source))
        return out
    return [Manifest(data, source)]


def manifest_files(path: Path) -> list[Path]:
    """The manifest files under ``path`` (itself if a file, or ``-``), in a stable order."""
    if str(path) == STDIN or path.is_file():
        return [path]
    if not path.exists():
        raise InputError("no such file or directory", file=str(path))
    if not path.is_dir():
        raise InputError("not a regular file or directory", file=str(path))
    found: list[Path] = []
    _walk_sorted(path, found)
    return found


def _walk_sorted(folder: Path, found: list[Path]) -> None:
    """Append manifest files under ``folder`` in ``kubectl apply -R`` order.

    kubectl walks each folder's entries in byte order, descending into a subfolder where its
    name sorts (``01-ns.yaml``, ``02-app/…``, ``03-np.yaml``); ``os.walk`` would put every
    file of a folder before its subfolders and so apply ``03-np.yaml`` before ``02-app/``.
    Symlinked folders are not followed (as in kubectl), which also rules out cycles.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"cannot read directory: {exc.strerror}", file=str(folder)) from None
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _walk_sorted(Path(entry.path), found)
            elif entry.name.endswith(MANIFEST_SUFFIXES):
                os.stat(entry.path)  # a symlink loop or a dangling link is reported, not skipped
                found.append(Path(entry.path))  # what is not a regular file, read_text refuses
        except OSError as exc:
            what = "a symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror
            raise InputError(f"cannot read: {what}", file=entry.path) from None


def load_paths(paths: Iterable[str | Path]) -> list[Manifest]:
    """All objects in the given files and directories, in order. Leniently (--lenient), a
    file in a folder that holds no manifest (no kind/apiVersion) is skipped with a warning."""
    out: list[Manifest] = []
    for raw in paths:
        folder = Path(raw).is_dir()
        for file in manifest_files(Path(raw)):
            try:
                out.extend(parse_manifest_text(read_text(file), STDIN_NAME if str(file) == STDIN else str(file)))
            except InputError as exc:
                stray = folder and exc.path in ("kind", "apiVersion")
                if not (stray and forgive(exc, "the file is skipped: it is no Kubernetes manifest")):
                    raise
    return out
