"""YAML 1.2's core schema on PyYAML: how a --config file and a flag's number are read.

PyYAML reads YAML 1.1, whose plain scalars mean more than they say: `gap_minutes: 1:30`
is 90 (base 60), `window: 010` is 8 (octal), `0b11` is 3, `1_000` is 1000, `strict: on`
and a name `no` are booleans, `2006-03-01` is a date. YAML 1.2's core schema
(https://yaml.org/spec/1.2.2/#1032-tag-resolution), the one JSON's numbers follow, reads
each of those as the text written. Besides text it has four kinds of plain scalar:
null (`null`, `~`, nothing), booleans (`true`, `false`), integers (decimal, `0o` octal,
`0x` hex) and floats (a dot or an exponent, `.inf`, `.nan`), the `CORE` patterns.

`Loader` reads by them (PyYAML's safe constructors do the rest: mappings, lists, merge
keys `<<`) and refuses a key given twice; `Dumper` quotes the text that either YAML 1.1
or 1.2 would read as something else (`'no'`, `'010'`, `'1e5'`), so that what it writes
reads back the same in both; `plain` reads a flag's text as a file would read it unquoted.

Why PyYAML's own resolvers and no other library: yamlcore (a 1.2 core-schema loader for
PyYAML by its maintainer, version 0.0.x) builds on PyYAML's BaseLoader without merge
keys, which --config files use; ruamel.yaml reads YAML 1.2 by default but is another
parser, with its own errors and API, for what is four patterns here.

A number keeps the text it was written as (`Written.text`): a text setting takes that
text (`version: 007` is '007', not '7'), and a number setting reads the number from it
exactly (`Written.exact`), refusing a leading zero (`010`: 8 to YAML 1.1, 10 to YAML
1.2), with the rest of `config.coerce`'s rules. A scalar tagged as what its text is not
(`!!int 0b11`, `!!bool yes`) is kept as `Mistagged`, and text that would be a number
written plain (`"30"`, `!!str 30`) as `NumberAsText`: the setting given it refuses it by
its key, saying what to write, where PyYAML would stop the file at a line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import yaml

_TAG = "tag:yaml.org,2002:"

# YAML 1.2.2, 10.3.2: each tag's pattern, and the first characters of the scalars it may match
CORE: dict[str, tuple[re.Pattern[str], str | list[str]]] = {
    "null": (re.compile(r"~|null|Null|NULL|"), ["~", "n", "N", ""]),
    "bool": (re.compile(r"true|True|TRUE|false|False|FALSE"), "tTfF"),
    "int": (re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"), "-+0123456789"),
    "float": (
        re.compile(
            r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
        ),
        "-+0123456789.",
    ),
}

# The plain scalars of YAML 1.1 that 1.2 reads as text, and what to write instead (`number_hint`)
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")  # 1:30 is 90, 1:30.5 is 90.5
_GROUPED = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o[0-7_]+")
_BINARY = re.compile(r"[-+]?0b[01_]+")
_SIGNED_BASE = re.compile(r"([-+])0(?:x([0-9a-fA-F]+)|o([0-7]+))")  # -0x10: YAML 1.1's -16, text to 1.2
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")  # 010: octal 8 to YAML 1.1, decimal 10 to YAML 1.2


@dataclass(frozen=True, eq=False)
class Written:
    """A number of a YAML file, or of a flag (`plain`), as it was written: `text`, which
    YAML 1.2's core schema reads as an integer or a float (`kind`: `0x1F`, `007` int,
    `1e-4`, `.inf`, `!!float 1` float).

    No int or float is made of it when it is read: the setting it is given reads it from
    the text (`config.coerce`), a text setting taking the text as it is, a number setting
    the number to the digit (`exact`). So a float's rounding never makes an integer of
    what is not one (`9007199254740993.0`), and a number of any length is read: Python
    makes no int of over 4,300 decimal digits (and takes seconds over millions). It
    equals what a YAML reader makes of it (`1.4 == 1.4`, `0x10 == 16`), as a key too."""

    text: str
    kind: type = int

    def __repr__(self) -> str:  # what a message shows: `010 is not of type bool`, `1e400`, not `10`, `inf`
        return self.text

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Written):
            other = other.read
        elif not isinstance(other, int | float | Decimal):
            return NotImplemented
        return self.read == other

    def __hash__(self) -> int:
        return hash(self.read)  # Python's numbers hash alike when equal: 16, 16.0, Decimal(16)

    @property
    def read(self) -> Decimal | int | float:
        """What a YAML reader makes of it: an integer to the digit (`exact`), a float the
        nearest float."""
        if self.kind is int:
            return self.exact
        try:
            return float(self.exact)
        except OverflowError:  # `!!float 0x...` of over 256 hexadecimal digits
            return math.inf if self.exact > 0 else -math.inf

    @property
    def exact(self) -> Decimal | int:
        """Its value to the digit: a Decimal (`1e400`, `.5`; Infinity and NaN for `.inf`,
        `.nan`), an int for a `0x` or `0o` integer (read in its base, in time linear in its
        length, as a Decimal of a long int is not)."""
        sign, body = ("-", self.text[1:]) if self.text[:1] in "+-" else ("", self.text)
        special = {".inf": "Infinity", ".nan": "NaN"}.get(body.lower())
        if special:
            return Decimal(sign + special)
        base = {"0o": 8, "0x": 16}.get(body[:2])
        if base:
            return int(sign + body[2:], base)
        return Decimal(self.text)


@dataclass(frozen=True)
class Mistagged:
    """A scalar whose tag names a type its text is not to YAML 1.2 (`!!int 0b11`, `!!int
    1_000`, `!!bool yes`, `!!null 5`; `tag`: int, float, bool or null): kept, for the
    setting it is given to refuse by its key (`config.coerce`), where it stopped the
    whole file, told by its line alone."""

    text: str
    tag: str

    def __repr__(self) -> str:  # `!!int '0b11'`: the tag as written, the text quoted
        return f"!!{self.tag} {self.text!r}"

    @property
    def said(self) -> str:
        """Why no setting takes it, and what to write where YAML 1.1 read it (`write 3`)."""
        noun = {"int": "integer", "bool": "boolean"}.get(self.tag, self.tag)
        hint = " (write true or false)" if self.tag == "bool" else number_hint(self.text)
        return f"{self!r} is no YAML 1.2 {noun}{hint}"


class NumberAsText(str):
    """Text that a YAML file would read as a number written plain, but that is written
    otherwise (`how`: `"30"` in quotes, `!!str 30` tagged, `|-` a block scalar): for a
    number setting to say what to write (`config.coerce`); else it is the text."""

    how: str

    def __new__(cls, text: str, how: str) -> NumberAsText:
        made = super().__new__(cls, text)
        made.how = how
        return made


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Written | Mistagged:
    text = loader.construct_scalar(node)
    if not CORE["int"][0].fullmatch(text):  # `!!int 1_000`: a tag does not change the schema
        return Mistagged(text, "int")
    return Written(text, int)


def _float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Written | Mistagged:
    text = loader.construct_scalar(node)  # an integer's text too (`!!float 0x1F`)
    if not CORE["float"][0].fullmatch(text) and not CORE["int"][0].fullmatch(text):
        return Mistagged(text, "float")
    return Written(text, float)


def _bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool | Mistagged:
    text = loader.construct_scalar(node)
    if not CORE["bool"][0].fullmatch(text):  # `!!bool yes`
        return Mistagged(text, "bool")
    return text.lower() == "true"


def _null(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Mistagged | None:
    text = loader.construct_scalar(node)  # PyYAML's own took `!!null 5` as null
    return None if CORE["null"][0].fullmatch(text) else Mistagged(text, "null")


def _str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    text = loader.construct_scalar(node)
    if loader.resolve(yaml.ScalarNode, text, (True, False)) not in (f"{_TAG}int", f"{_TAG}float"):
        return text
    if node.style in ("'", '"'):
        return NumberAsText(text, "in quotes")
    return NumberAsText(text, "in a block scalar" if node.style else "tagged !!str")  # `|-`, `>-`; plain


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading plain scalars by YAML 1.2's core schema (`CORE`), numbers
    as `Written` ones, and refusing a key given twice in one mapping: YAML 1.2 says keys are
    unique, and PyYAML would keep the last quietly (`epochs: 5` ... `epochs: 50`).

    Merge keys (`<<: *defaults`, https://yaml.org/type/merge.html) are merged here
    (`flatten_mapping`): a key a merge brings in may be given again beside it (that is how a
    merge is overridden), and of a list of mappings merged (`<<: [*a, *b]`) the first
    that gives a key wins. Each mapping's own keys are checked once, as written, merged in
    or not: a key twice in a mapping merged in (`<<: {a: 1, a: 2}`) is refused, as is `<<`
    twice (PyYAML took the last of either), and a mapping merged in one place and used
    whole in another (`<<: &s {<<: *t, a: 1}` ... `x: *s`) is not refused for a key its
    merge brought in."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}  # CORE's, not 1.1's

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.sections: dict[int, str] = {}  # id of a mapping's node -> where it sits (`_sections`)
        self.flattened: set[int] = set()  # ids of the mapping nodes checked and merged

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        self.sections = _sections(node)
        return node

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Check `node`'s own keys (`_unique`), then put the keys its merges bring in before
        its own, the first mapping merged last (a mapping is built in order, the last of a
        key winning). Once for each node: an alias's node is flattened already. PyYAML's
        own kept the last mapping's key of `<<: [*a, *b]` where the key's text was not one
        object in both (`key1`), the first's where it was (`k`)."""
        if id(node) in self.flattened:
            return
        self.flattened.add(id(node))
        self._unique(node)
        merged: list[list[tuple[yaml.Node, yaml.Node]]] = []  # each mapping merged in, flattened, in order
        own = []
        for key_node, value_node in node.value:
            if key_node.tag != f"{_TAG}merge":
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"expected a mapping or list of mappings for merging, but found {source.id}", source.start_mark,
                    )  # fmt: skip
                self.flatten_mapping(source)
                merged.append(source.value)
        node.value = [pair for pairs in reversed(merged) for pair in pairs] + own

    def _unique(self, node: yaml.MappingNode) -> None:
        """ConstructorError for a key given twice among `node`'s own (`<<` one of them),
        naming the key, where the mapping sits and the two lines."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            merge = key_node.tag == f"{_TAG}merge"
            key = "<<" if merge else self.construct_object(key_node)
            if not isinstance(key, Hashable):  # refused by the safe loader itself, when it builds the mapping
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                where = f" in {self.sections[id(node)]}" if self.sections.get(id(node)) else ""
                lines = f"lines {seen[key]} and {line}" if line != seen[key] else f"line {line}"
                hint = "; merge several mappings with one: <<: [*a, *b]" if merge else ""
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} given twice{where}, on {lines}{hint}")
            seen[key] = line


def _sections(root: yaml.Node | None) -> dict[int, str]:
    """Where each mapping of a document sits, for a message: id of its node -> the keys
    that lead to it from the top (`segment`, `score.segment`; '' for the top; an item of
    a list by its index, `items[0]`), by the first way to it in the file (an anchor's
    node, where it is written). A mapping merged in (`<<: {...}`) sits where its keys go."""
    found: dict[int, str] = {}
    todo: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while todo:  # depth first, in the file's order; a node met again (an alias) is not walked again
        node, at = todo.pop()
        if id(node) in found:
            continue
        found[id(node)] = at
        if isinstance(node, yaml.SequenceNode):
            todo.extend((item, f"{at}[{i}]") for i, item in reversed(list(enumerate(node.value))))
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):
                if key_node.tag == f"{_TAG}merge":
                    sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                    todo.extend((source, at) for source in reversed(sources))
                    continue
                key = shown_key(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "(a key)"
                todo.append((value_node, f"{at}.{key}" if at else key))
    return found


class Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting the text YAML 1.2 would read as another value besides
    the text YAML 1.1 would (`'1e5'`, `'0o17'` as well as `'no'`, `'1:30'`): its file reads
    back the same by `Loader` and by any YAML 1.1 reader."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        if "\x85" in data:  # PyYAML writes a NEL into single quotes as a line break, read back as a space
            return self.represent_scalar(f"{_TAG}str", data, style='"')  # escaped: \N
        return super().represent_str(data)


for _tag, (_pattern, _first) in CORE.items():
    _anchored = re.compile(rf"^(?:{_pattern.pattern})\Z")  # not `$`, which takes `5\n` for a number too
    Loader.add_implicit_resolver(_TAG + _tag, _anchored, list(_first))
    Dumper.add_implicit_resolver(_TAG + _tag, _anchored, list(_first))
Loader.add_implicit_resolver(f"{_TAG}merge", re.compile(r"^(?:<<)$"), ["<"])
Loader.add_constructor(f"{_TAG}int", _int)
Loader.add_constructor(f"{_TAG}float", _float)
Loader.add_constructor(f"{_TAG}bool", _bool)
Loader.add_constructor(f"{_TAG}null", _null)
Loader.add_constructor(f"{_TAG}str", _str)
Dumper.add_representer(str, Dumper.represent_str)


def plain(text: str) -> Any:
    """`text` as a YAML file gives it written unquoted: a flag's number read by the file's
    rule (`0x1F` is 31, `1_000` and `1:30` are text); what no YAML scalar is stays text."""
    loader = Loader("")
    try:
        tag = loader.resolve(yaml.ScalarNode, text, (True, False))
        return loader.construct_object(yaml.ScalarNode(tag, text))
    except yaml.YAMLError:  # `<<`, a merge key alone
        return text
    finally:
        loader.dispose()


def shown_key(key: Any) -> str:
    """A mapping's key as a message names it: a word as it is (`gap_minutes`, `typo`), any
    other by `repr`, quoted and on one line whatever it holds (`'a\\nb'`, `''`)."""
    return key if isinstance(key, str) and re.fullmatch(r"[\w-]+", key, re.ASCII) else repr(key)


def leading_zero(text: str) -> str | None:
    """What to write for an integer written with a leading zero (`010`: 8 to YAML 1.1,
    10 to YAML 1.2; a reader of either may have meant the other), or None for any other."""
    if not _LEADING_ZERO.fullmatch(text):
        return None
    sign, digits = "-" if text.startswith("-") else "", text.lstrip("+-").lstrip("0") or "0"
    octal = f", or 0o{digits} for octal" if not sign and set(digits) <= set("01234567") else ""
    return f"{text} has a leading zero, octal to YAML 1.1 and decimal to YAML 1.2: write {sign}{digits}{octal}"


def number_hint(text: str) -> str:
    """What to say about `text` given where a number is read: how to write a number that
    YAML 1.1 read and 1.2 does not (`1:30`, `1_000`, `0b11`), or '' for any other text."""
    if _SEXAGESIMAL.fullmatch(text):
        return " (YAML 1.1's base 60 is text to YAML 1.2: write one number)"
    if signed := _SIGNED_BASE.fullmatch(text):
        base, digits = ("x", signed[2]) if signed[2] else ("o", signed[3])
        number = int(digits, 16 if base == "x" else 8)
        written = f"{signed[1].strip('+')}{number}" if number < 10**30 else "it in decimal"
        return f" (YAML 1.2 has no sign before 0{base}: write {written})"
    if _BINARY.fullmatch(text):
        sign, digits = "-" if text.startswith("-") else "", text.lstrip("+-")[2:].replace("_", "")
        return f" (YAML 1.2 has no binary numbers: write {sign}{int(digits, 2)})" if digits else ""
    ungrouped = text.replace("_", "")
    if "_" in text and _GROUPED.fullmatch(text) and isinstance(plain(ungrouped), Written):
        if leading_zero(ungrouped):  # `0_10`: what to write is as ambiguous
            return ""
        return f" (YAML 1.2 reads no _ between digits: write {ungrouped})"
    return ""
