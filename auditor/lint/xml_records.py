"""Streamed, defused XML: only the records asked for are built, one at a time, within
limits on nesting, names, markup-free runs and a record's size. Apart because it is the
reader's hot path (200,000 steps), tuned so expat calls Python only where it must.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from auditor.lint import limits
from auditor.lint.layout import Source
from auditor.lint.limits import Found, format_size
from auditor.lint.records import Location

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

# XML: nesting (real files nest about 25 deep), distinct element and attribute names (a few
# hundred in real files), bytes without a "<" (a start tag's attributes arrive all at once),
# elements of one record (a <Workflow> or a step has a few dozen).
MAX_XML_DEPTH = 256
MAX_XML_NAMES = 50_000
MAX_XML_RUN = 16 * 1024 * 1024
MAX_RECORD_ELEMENTS = 10_000
_XML_CHUNK = 1024 * 1024


class _XmlLimit(Exception):
    """An XML file past one of the reader's limits."""


class _Stop(Exception):
    """The run's budget is spent: the rest of the file is not read."""


class _Records:
    """The handlers of a streamed parse that build only the records asked for
    (`is_record(ancestors, name)`), each handed to `on_record(element, line of its start
    tag)` as it ends and then dropped; every other element is only a name on the path, so
    memory is the path and one record.

    They are set on the defused parser's expat parser itself, in place of ElementTree's
    `XMLParser` handlers (which call a target in Python for every element): expat calls
    `start` and `end` for the tags outside a record, `record_start` and `record_end` for
    those of a record, and hands a record's text straight to its C `TreeBuilder`. The
    elements built are those `XMLParser` builds: a namespaced name `uri}local` becomes
    `{uri}local`, and of an attribute written twice the last is kept. The defused parser's
    own handlers (DTDs, entity declarations, external references, undefined entities) are
    left as they are."""

    __slots__ = (
        "base",
        "builder",
        "count",
        "expat",
        "first_line",
        "inner",
        "is_record",
        "on_record",
        "path",
        "record",
        "size",
    )

    def __init__(
        self,
        expat: Any,
        is_record: Callable[[list[str], str], bool],
        on_record: Callable[[Element, int], bool],  # False: the budget is spent, stop
    ) -> None:
        self.expat = expat
        self.is_record = is_record
        self.on_record = on_record
        self.path: list[str] = []  # local names of the open elements outside a record
        self.builder = TreeBuilder()  # the open record's
        self.base = 0  # length of `path` where the open record starts
        self.inner = 0  # its elements open, itself included
        self.size = 0  # its elements so far
        self.record = ""  # its local name
        self.first_line = 0
        self.count = 0  # records handed on
        expat.ordered_attributes = False  # a start tag's attributes as a dict, in their order
        self._outside()

    def _outside(self) -> None:
        self.expat.StartElementHandler = self.start
        self.expat.EndElementHandler = self.end
        self.expat.CharacterDataHandler = _ignore_text

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        path = self.path
        local = local_name(tag)
        if len(path) >= MAX_XML_DEPTH:
            raise _XmlLimit(f"nested deeper than {MAX_XML_DEPTH:,} elements")
        if not self.is_record(path, local):
            path.append(local)
            return
        self.builder = builder = TreeBuilder()
        self.base, self.inner, self.size, self.record = len(path), 0, 0, local
        expat = self.expat
        self.first_line = expat.CurrentLineNumber
        expat.StartElementHandler = self.record_start
        expat.EndElementHandler = self.record_end
        expat.CharacterDataHandler = builder.data
        self.record_start(tag, attributes)

    def end(self, tag: str) -> None:
        self.path.pop()

    def record_start(self, tag: str, attributes: dict[str, str]) -> None:
        inner = self.inner
        if self.base + inner >= MAX_XML_DEPTH:
            raise _XmlLimit(f"nested deeper than {MAX_XML_DEPTH:,} elements")
        size = self.size + 1
        if size > MAX_RECORD_ELEMENTS:
            raise _XmlLimit(f"a <{self.record}> holds over {MAX_RECORD_ELEMENTS:,} elements")
        self.size, self.inner = size, inner + 1
        if attributes and any("}" in name for name in attributes):
            attributes = {"{" + k if "}" in k else k: v for k, v in attributes.items()}
        self.builder.start("{" + tag if "}" in tag else tag, attributes)

    def record_end(self, tag: str) -> None:
        element = self.builder.end("{" + tag if "}" in tag else tag)
        self.inner -= 1
        if self.inner:
            return
        self._outside()
        self.count += 1
        if not self.on_record(element, self.first_line):
            raise _Stop

    def release(self) -> None:
        """Lets go of the parser and of a record left open once the file is parsed or given
        up: the parser holds its handlers and they hold it (these and the defused parser's),
        a cycle only the garbage collector would free, and it is held off while the inputs
        are read."""
        expat = self.expat
        for handler in _HANDLERS:
            setattr(expat, handler, None)
        self.builder = TreeBuilder()


# Text outside a record is not kept: a C function that looks at its argument and keeps
# nothing, so expat does not call back into Python for it (with no handler set, expat would
# hand the text to the defused parser's default handler, in Python).
_ignore_text = len
_NO_TARGET = object()
# The handlers `_Records` and the defused parser set, dropped once a file is parsed.
_HANDLERS = (
    "StartElementHandler",
    "EndElementHandler",
    "CharacterDataHandler",
    "DefaultHandlerExpand",
    "StartDoctypeDeclHandler",
    "EntityDeclHandler",
    "UnparsedEntityDeclHandler",
    "ExternalEntityRefHandler",
)


def stream_xml(
    data: bytes,
    location: Location,
    kind: str,
    found: Found,
    is_record: Callable[[list[str], str], bool],
    on_record: Callable[[Element, int], bool],
) -> int | None:
    """Hands each record of an XML file to `on_record`, parsing without DTDs, entity
    expansion or external references, a megabyte at a time within the XML limits; returns
    how many records it handed on, None after a problem."""
    # No target: `_Records` sets the element and text handlers, the rest (comments, processing
    # instructions) go to the defused parser's default handler, which ignores them.
    parser = DefusedXMLParser(target=_NO_TARGET, forbid_dtd=True)
    records = _Records(parser.parser, is_record, on_record)
    run = 0  # bytes since the last "<": a start tag's attributes arrive in one call
    try:
        for start in range(0, len(data), _XML_CHUNK):
            chunk = data[start : start + _XML_CHUNK]
            last = chunk.rfind(b"<")
            run = run + len(chunk) if last < 0 else len(chunk) - last - 1
            if run > MAX_XML_RUN:
                raise _XmlLimit(f"holds over {format_size(MAX_XML_RUN)} without markup")
            parser.feed(chunk)
            if len(parser.parser.intern) > MAX_XML_NAMES:
                raise _XmlLimit(f"uses over {MAX_XML_NAMES:,} distinct names")
        parser.close()
    except _Stop:
        pass
    except _XmlLimit as exc:
        found.problem(location, kind, f"XML not read: it {exc}, past what any solution holds")
        return None
    except ParseError as exc:
        found.problem(location, kind, f"XML does not parse: {exc}")
        return None
    except DefusedXmlException as exc:
        why = f"XML refused: {type(exc).__name__} (DTDs and entities are not read)"
        found.problem(location, kind, why)
        return None
    finally:
        records.release()
    return records.count


def read_xml_records(
    source: Source,
    rel: str,
    kind: str,
    found: Found,
    is_record: Callable[[list[str], str], bool],
    on_record: Callable[[Element, int], bool],
) -> int | None:
    """`stream_xml` over a file of the source; None when it could not be read."""
    data = source.read(rel, kind, found, limits.MAX_MEMBER_BYTES)
    if data is None:
        return None
    return stream_xml(data, source.location(rel), kind, found, is_record, on_record)


def collect(records: list[tuple[Element, int]]) -> Callable[[Element, int], bool]:
    def keep(element: Element, line: int) -> bool:
        records.append((element, line))
        return True

    return keep


def is_root_workflow(path: list[str], name: str) -> bool:
    return not path and name == "Workflow"


def read_root_workflow(
    source: Source, rel: str, kind: str, found: Found
) -> tuple[Element, int] | None:
    """The root <Workflow> of a .data.xml file and its line; None when the root is another
    element or the file could not be read."""
    records: list[tuple[Element, int]] = []
    read_xml_records(source, rel, kind, found, is_root_workflow, collect(records))
    return records[0] if records else None


def fields_of(element: Element) -> dict[str, str]:
    """Child element texts by local name, stripped (the first of a name wins)."""
    out: dict[str, str] = {}
    for child in element:
        out.setdefault(local_name(child.tag), (child.text or "").strip())
    return out


def raw_text(element: Element, tag: str) -> str | None:
    """A child's text as written ("" when empty); None when the child is absent."""
    for child in element:
        if local_name(child.tag) == tag:
            return child.text or ""
    return None


@functools.lru_cache(maxsize=4096)
def local_name(tag: object) -> str:
    """The name without its namespace (cached: a file uses a few hundred names, per element)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
