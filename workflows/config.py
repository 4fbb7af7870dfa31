"""Job configuration: one typed dataclass per job, the only source of its options.

A job's config is a frozen dataclass whose fields may hold other configs (the
demo holds a segmentation, a mining, two training and a scoring config). Each field
documents itself in its metadata, which `workflows.cli.options` turns into the
command's options and this module into YAML:

    gap_minutes: float = field(default=30.0, metadata={"help": "time: break after a gap of this many minutes"})

Metadata keys (all optional but `help`): `help` (one line), `choices` (derived from
a `Literal` type when absent), `argument` (a positional argument on the command
line), `short` (`-o`), `option` (the option's name when it is not the field's),
`prefix` (for a nested config: put before its fields' option names, e.g.
`mission-`), `omit` (for a nested config: its fields the job sets or ignores, not the
user), and for a nested config `choices` as a mapping (a field of it -> the values
this job allows). Plain dicts, so `sessions/` and `synth/` configs carry them without
importing anything of `workflows/`.

Values resolve in one order: the dataclass defaults, then a YAML file (a mapping
of the job's fields, nested configs as nested mappings; a key that is not a field
is an error naming it), then the options given on the command line (an option
not given is None and changes nothing). The resolved config is what the job
records (report.json, MLflow) and what `--print-config` prints.

A file's values are typed, as YAML 1.2 types them (`workflows.yaml_core`, `coerce`): a
number is a YAML number (`"30"`, `1:30`, `1_000` are text; `1e-4`, `0x1F` are numbers), a
boolean `true` or `false` (`no`, `on` are text), a list a YAML list; a number given as an
option is read by the same rule.
Every mistake is one line (`build`): a value the command line gave named by its
flag, one of the file's by the file and its key, with the value given:

    error: --config c.yaml: missions.window must be at least 1 (given: 0)
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import yaml

from workflows import yaml_core

T = TypeVar("T")


@dataclass(frozen=True)
class Leaf:
    """One scalar setting of a (possibly nested) config: where it sits and how it is typed.

    `path` is the chain of field names from the job's config (("missions",
    "min_jaccard")); `type` the field's type with `None` removed (`optional` says
    whether None is allowed); `option` the command-line name without dashes; `shown`
    the default as help gives it, where a value would mislead (metadata "shown": a
    default that depends on another setting); `choice_help` what each choice means
    (metadata "choice_help"), for help to describe the choices this command takes.
    """

    path: tuple[str, ...]
    type: Any
    optional: bool
    default: Any
    help: str
    choices: tuple[str, ...] | None
    option: str
    argument: bool
    short: str | None
    shown: str | None = None  # what help shows as the default, when not the value itself
    choice_help: Mapping[str, str] | None = None

    @property
    def described(self) -> str:
        """`help`, followed by what each of `choices` means when the field says (those a
        command narrowed them to: `score --method` names cascade and learned alone)."""
        if not (self.choice_help and self.choices):
            return self.help
        each = (f"{c} ({self.choice_help[c]})" if self.choice_help.get(c) else c for c in self.choices)
        return f"{self.help}: {', '.join(each)}"

    @property
    def key(self) -> str:
        """The Python identifier of the option (the path joined by `__`)."""
        return "__".join(self.path)

    @property
    def given(self) -> str:
        """How the command line names it: `--option`, or `OPTION` for a positional argument."""
        return self.option.upper() if self.argument else f"--{self.option}"

    @property
    def sequence(self) -> bool:
        """Whether the option takes several values (its type is a tuple or a list)."""
        return typing.get_origin(self.type) in (tuple, list)


def is_config(tp: Any) -> bool:
    """Whether `tp` is a dataclass type (a section of settings), not an instance or another type."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _split_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), len(args) < len(typing.get_args(tp))
    return tp, False


def _choices(tp: Any, meta: Mapping[str, Any]) -> tuple[str, ...] | None:
    if "choices" in meta:
        return tuple(meta["choices"])
    if typing.get_origin(tp) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(tp))
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def leaves(cls: type, prefix: str = "", path: tuple[str, ...] = (), default: Any = None) -> Iterator[Leaf]:
    """Every scalar setting of config class `cls`, nested configs flattened, in field order.

    Raises TypeError for a field without `help` metadata: an option nobody can read
    about is a bug of the config, found by the tests that walk every command.
    """
    hints = typing.get_type_hints(cls)
    own = {_option(f) for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        tp, optional = _split_optional(hints[f.name])
        value = _default(f) if default is None else getattr(default, f.name)
        if is_config(tp):
            omit, narrowed = set(meta.get("omit", ())), dict(meta.get("choices", {}))
            for leaf in leaves(tp, prefix + meta.get("prefix", ""), (*path, f.name), value):
                child = leaf.path[len(path) + 1]
                if child in narrowed:
                    leaf = dataclasses.replace(leaf, choices=tuple(narrowed[child]))
                if child not in omit:
                    yield leaf
            continue
        if "help" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name}: no help in the field's metadata")
        yield Leaf(
            path=(*path, f.name),
            type=tp,
            optional=optional,
            default=value,
            help=_under_prefix(meta["help"], own, prefix),
            choices=_choices(tp, meta),
            option=prefix + _option(f),
            argument=bool(meta.get("argument")),
            short=meta.get("short"),
            # a default of the command's own (demo's batch of 32) is shown as it is, not the field's "by model"
            shown=meta.get("shown") if default is None or value == _default(f) else None,
            choice_help=meta.get("choice_help"),
        )


def _option(f: dataclasses.Field) -> str:
    """The command-line option of a config field, before any prefix: `max-steps`."""
    return f.metadata.get("option", f.name).replace("_", "-")


def _under_prefix(text: str, options: set[str], prefix: str) -> str:
    """`text` with the options of its own config it names (`--epochs`) under the prefix
    the command gives them (`demo`'s `--hierarchy-epochs`)."""
    if not prefix:
        return text
    return rename_flags(text, {option: f"--{prefix}{option}" for option in options})


def rename_flags(message: str, flags: Mapping[str, str]) -> str:
    """`message` with each option it names (`--batch-size`) by its flag in `flags`
    (option without its dashes -> flag: `{"batch-size": "--session-batch-size"}`);
    the others as they are."""
    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)", lambda m: flags.get(m[1], m[0]), message)


def flags_between(source: type, target: type, fields: Mapping[str, str]) -> dict[str, str]:
    """How command config `target` names the options of `source`: for each nested
    config `source` holds as field S and `target` as field T (`fields`: S -> T), each
    option by its name in `source` (`train session`'s `batch-size`) -> its flag in
    `target` (`demo`'s `--session-batch-size`). For `rename_flags`: a step's message
    in the words of the command that ran it."""

    def by_path(cls: type, field: str) -> dict[tuple[str, ...], str]:
        return {leaf.path[1:]: leaf.option for leaf in leaves(cls) if leaf.path[0] == field}

    flags: dict[str, str] = {}
    for mine, theirs in fields.items():
        named = by_path(target, theirs)
        flags |= {option: f"--{named[path]}" for path, option in by_path(source, mine).items() if path in named}
    return flags


def _yaml_problem(err: yaml.YAMLError) -> str:
    """What PyYAML found wrong, and where (line and column, from 1), in one line."""
    if not isinstance(err, yaml.MarkedYAMLError) or not err.problem:
        return str(err).splitlines()[0]
    mark = err.problem_mark
    return err.problem + (f", line {mark.line + 1}, column {mark.column + 1}" if mark else "")


def read_yaml(path: str | Path | None) -> dict[str, Any]:
    """The mapping in a YAML file ({} for None or an empty file); ValueError naming the
    file when it cannot be read, is not YAML (a key twice in one mapping included) or is
    not a mapping."""
    if path is None:
        return {}
    try:
        data = yaml.load(Path(path).read_text(), Loader=yaml_core.Loader)  # a SafeLoader, by YAML 1.2
    except FileNotFoundError:
        raise ValueError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--config {path}: cannot be read as text ({err.__class__.__name__})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"--config {path}: not valid YAML ({_yaml_problem(err)})") from None
    except RecursionError:
        raise ValueError(f"--config {path}: nested too deeply to read (a job's settings are a few levels)") from None
    except ValueError as err:  # a constructor's own (`!!timestamp 2006-13-01`: "month must be in 1..12")
        raise ValueError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]!r})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of a job's settings, got {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    """What a YAML value is, in a user's words: `a number`, `text`, `a list`."""
    kinds = [(yaml_core.Written, "a number"), (bool, "true or false"), (str, "text"), (list, "a list"),
             (date, "a date"), (bytes, "binary data"), (yaml_core.Mistagged, f"{value!r}")]  # fmt: skip
    return next((said for tp, said in kinds if isinstance(value, tp)), type(value).__name__)


def coerce(value: Any, tp: Any, name: str, text: bool = False) -> Any:
    """`value` (from YAML or the command line) as the field type `tp`.

    `text`: the value was given as text, on the command line, where a number, a list
    of them or a date and time is read from its text, a number as a YAML file's would
    be unquoted (`yaml_core.plain`). A YAML file's values are typed (`text` False), by
    YAML 1.2 (`yaml_core`): a number must be a YAML number (`"30"`, `1:30`, `1_000` are
    text; `1e-4`, `0x1F` are numbers), a list a YAML list (or, of text, a
    comma-separated string or any one value: `unknown_user: 08` is ['08']); a number
    with a leading zero is refused (`010`: 8 to YAML 1.1, 10 to 1.2); a number is taken
    as text as it is written (`version: 007` is '007'), and as a number by its exact
    value (`_number`): a whole one as a float (`gap_minutes: 30`), one written as a
    float as an int when it is whole (`workers: 2.0`, `1e3`), never through a float's
    rounding. Datetimes take an ISO 8601 string or a date (UTC when it names no zone);
    floats must be finite; None only where the type allows it. ValueError, in one line,
    names the setting `name`, the value given as it was written (`repr`: quoted, on one
    line) and what it must be.
    """
    tp, optional = _split_optional(tp)
    if value is None:
        if not optional:
            raise ValueError(f"{name}: must be set, not null")
        return None
    if isinstance(value, yaml_core.Mistagged):  # `!!int 0b11`: no value of any type
        raise ValueError(f"{name}: {value.said}")
    if isinstance(value, yaml_core.Written):  # a file's number, or a flag's: for a text setting, the text written
        if tp is str:
            return value.text
        if tp in (int, float):
            return _number(value, tp, name)
        # else refused below, as it was written (`010 is not of type bool`)
    origin = typing.get_origin(tp)
    type_name = getattr(tp, "__name__", str(tp))
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ValueError(f"{name}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return allowed[allowed.index(value)]  # the choice itself, not a `yaml_core.Written` equal to it
    try:
        if origin in (tuple, list):
            (inner, *_) = typing.get_args(tp) or (str,)
            if isinstance(value, str) and (text or inner is str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif inner is str and not isinstance(value, list | tuple | Mapping):  # one value, as its own list
                value = [value]  # `unknown_user: 08` is ['08'], as `guest` is ['guest']
            if not isinstance(value, list | tuple):
                raise ValueError(f"{name}: expected a list, got {value!r}")
            converted = [coerce(v, inner, name, text) for v in value]
            return tuple(converted) if origin is tuple else converted
        if tp is datetime:
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            elif isinstance(value, date) and not isinstance(value, datetime):
                value = datetime(value.year, value.month, value.day)
            if not isinstance(value, datetime):
                raise ValueError(f"{name}: {value!r} is not a date and time (ISO 8601)")
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if tp in (int, float) and isinstance(value, str):
            number = yaml_core.plain(value.strip()) if text else None  # a flag's, read as a file's
            if isinstance(number, yaml_core.Written):
                return _number(number, tp, name)
            raise ValueError(f"{name}: {_no_number(value, type_name)}")
        if tp is bool and isinstance(value, str):  # YAML 1.1's `yes`, `on`: text to YAML 1.2
            raise ValueError(f"{name}: {value!r} is not of type bool (write true or false)")
        if tp in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
            return _number(value, tp, name)  # a program's number (a file's is `Written`)
        if tp is str and isinstance(value, int) and not isinstance(value, bool):  # `version: 2`, `-1`
            value = str(value)
    except ValueError as err:
        if str(err).startswith(name):
            raise
        raise ValueError(f"{name}: {value!r} is not of type {type_name}") from None
    if tp in (int, float, str, bool) and (not isinstance(value, tp) or (tp is not bool and isinstance(value, bool))):
        raise ValueError(f"{name}: {value!r} is not of type {type_name}")
    return str(value) if tp is str else value  # a plain str, not a `yaml_core.NumberAsText`


def _number(value: yaml_core.Written | int | float, tp: type, name: str) -> int | float:
    """`value` as a setting of type `tp` (int or float), read from its exact value: a
    file's or an option's number from its text (`yaml_core.Written.exact`), a program's
    int or float as it is. An int setting takes a whole number (`2.0`, `1e3`) of 64 bits
    (what numpy, polars and torch take); not `2.5`, nor `9007199254740993.0`, which a
    float would round to a whole 9007199254740992. A float setting takes a finite number
    a float holds: not `.inf`, `1e400` (beyond 1.8e308) nor `1e-400` (nearer 0 than
    5e-324: it would be 0). ValueError, in one line naming `name` and the value as it was
    written (`_as_written`), otherwise; for a leading zero (`010`) as
    `yaml_core.leading_zero` says it."""
    if isinstance(value, yaml_core.Written):
        if said := yaml_core.leading_zero(value.text):
            raise ValueError(f"{name}: {said}")
        exact = value.exact
    else:
        exact = Decimal(value)
    shown = _as_written(value)
    if isinstance(exact, Decimal) and not exact.is_finite():
        raise ValueError(f"{name}: {shown} is {'not a finite number' if tp is float else 'not of type int'}")
    if tp is int:
        if isinstance(exact, Decimal) and exact != exact.to_integral_value():
            raise ValueError(f"{name}: {shown} is not of type int")
        if not -(2**63) <= exact < 2**63:
            raise ValueError(f"{name}: {shown} is out of range (a 64-bit integer: at most {2**63 - 1:,})")
        return int(exact)
    try:
        number = float(exact)
    except OverflowError:  # a long `0x` integer
        number = math.inf
    if math.isinf(number):
        raise ValueError(f"{name}: {shown} is beyond a float's range (at most about 1.8e308)")
    if number == 0 and exact != 0:
        raise ValueError(f"{name}: {shown} is too near 0 for a float, which would read it as 0 (write 0 if 0 is meant)")
    return number


def _as_written(value: Any) -> str:
    """`value` as a message shows it: as `repr` writes it, which for a file's or an
    option's number is its text (`1e400`, `.5`), on one line; a number of over 60
    characters by its length (`an integer of 5,000 digits`), not echoed."""
    try:
        shown = repr(value)
    except ValueError:  # a program's int of over 4,300 digits, which Python does not write out
        return "an integer of over 4,300 digits"
    if len(shown) <= 60 or not isinstance(value, int | float | yaml_core.Written):
        return shown
    if re.fullmatch(r"[-+]?[0-9]+", shown):
        return f"an integer of {len(shown.lstrip('+-')):,} digits"
    return f"a number of {len(shown):,} characters"


def _no_number(value: str, type_name: str) -> str:
    """Why text given for a number is refused, and what to write: a number of YAML 1.1's
    that YAML 1.2 reads as text (`1:30`, `1_000`, `-0x10`: `yaml_core.number_hint`), a
    file's number written as text (`yaml_core.NumberAsText`: `"30"`, `!!str 30`, a block
    scalar), a word Python reads as a number that is not finite (`nan`, `inf`). The text
    is shown as `repr` writes it: quoted, and on one line whatever it holds (`'inf\\n'`,
    `' nan '`)."""
    try:
        finite = math.isfinite(float(value))
    except ValueError:
        finite = True
    if not finite:
        return f"{value!r} is not a finite number"
    hint = yaml_core.number_hint(value)
    if not hint and isinstance(value, yaml_core.NumberAsText):
        hint = {
            "in quotes": " (a number in quotes: write it without them)",
            "tagged !!str": " (a number tagged !!str: write it without the tag)",
        }.get(value.how, f" (a number {value.how}: write it after the key, on its line)")
    return f"{value!r} is not of type {type_name}{hint}"


def build(
    cls: type[T],
    values: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    source: str | Path | None = None,
) -> T:
    """An instance of config class `cls` from a mapping (a YAML file's) and overrides.

    `values` is nested like the config; `overrides` maps `Leaf.key`s (`missions__window`)
    to values as the command line gives them (text, read by `coerce`), None meaning
    "not given"; `source` names the file `values` came from. Raises ValueError, in one
    line, naming unknown keys, values of the wrong type and whatever the configs' own
    checks reject: a setting the command line gave by its flag (`--gap-minutes`), one
    of the file by its key, after the file's name (`--config c.yaml: segment.gap_minutes`).
    """
    overrides = overrides or {}
    settings = list(leaves(cls)) if overrides or values else []
    given = {leaf.key: leaf for leaf in settings if overrides.get(leaf.key) is not None}
    # the command line's values are text: read as the setting's type, and named by their flags if they are not
    typed = {key: coerce(v, given[key].type, given[key].given, text=True) if key in given else v
             for key, v in overrides.items()}  # fmt: skip
    in_file = _in_file(settings, values or {}, overrides)
    try:
        return _build(cls, _merge(dict(values or {}), _nest(typed)), ())
    except _NestedError as err:
        raise ValueError(_with_flags(cls, err.path, err.names, str(err), in_file, source)) from None
    except _Unset:
        raise
    except ValueError as err:  # a value of the file's (an unknown key, a wrong type): named by the file
        if source is None:
            raise
        raise ValueError(f"--config {source}: {err}") from None


def _in_file(
    settings: Iterable[Leaf], values: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[tuple[str, ...], Any]:
    """The `settings` (a config's `leaves`) a file's `values` give and the command line's
    `overrides` do not: path -> the value as the file gives it."""
    found: dict[tuple[str, ...], Any] = {}
    for leaf in settings:
        node: Any = values
        for key in leaf.path:
            node = node.get(key, dataclasses.MISSING) if isinstance(node, Mapping) else dataclasses.MISSING
        if node is not dataclasses.MISSING and overrides.get(leaf.key) is None:
            found[leaf.path] = node
    return found


class _Unset(ValueError):
    """A setting with no default given nowhere: neither the file's nor the command line's."""


class _NestedError(ValueError):
    """A config's own check failed (`path`: where it sits, () for the job's own; `names`: its fields)."""

    def __init__(self, message: str, path: tuple[str, ...], names: list[str]) -> None:
        super().__init__(message)
        self.path, self.names = path, names


def _with_flags(
    cls: type,
    path: tuple[str, ...],
    names: list[str],
    message: str,
    in_file: Mapping[tuple[str, ...], Any],
    source: str | Path | None,
) -> str:
    """A config's message with its settings named as the user gave them: a config's
    check names its fields (`window must be at least 1`), which the command offers
    under a prefix (`--mission-window`, `demo`'s `--segment-min-overlap`); those the
    file gave (`in_file`: path -> value, `_in_file`) by their key, after the file's name
    and followed by the values the message does not show (`--config c.yaml:
    missions.window must be at least 1 (given: 0)`)."""
    here = [leaf for leaf in leaves(cls) if leaf.path[:-1] == path]
    filed = {leaf.path[-1] for leaf in here if leaf.path in in_file}
    flags = {leaf.path[-1]: ".".join(leaf.path) if leaf.path[-1] in filed else f"--{leaf.option}" for leaf in here}
    own = {_option(f): flags[f.name] for f in dataclasses.fields(_config_at(cls, path)) if f.name in flags}
    # and a setting of a config it holds that the file gave, named by the command's flag (`--min-p-same`)
    below = {leaf.option: leaf.path for leaf in leaves(cls) if leaf.path[: len(path)] == path and leaf.path in in_file}
    named = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", message))
    used = {
        (*path, f.name) for f in dataclasses.fields(_config_at(cls, path)) if f.name in filed and _option(f) in named
    }
    # an option of its own it names as such (`--ratio`), by the flag the command gives it (`--score-ratio`)
    message = rename_flags(message, own)
    named = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", message))
    used |= {below[option] for option in named & set(below)}
    message = rename_flags(message, {option: ".".join(at) for option, at in below.items()})
    for name in sorted(set(names) & set(flags), key=len, reverse=True):
        # a name of two words or more anywhere (`break_after_minutes`); a one-word name
        # where it starts the message only, as its subject (`rows` may be a plain word)
        start = "" if "_" in name else "^"
        message, n = re.subn(rf"{start}(?<![\w.-]){re.escape(name)}(?![\w-])", flags[name], message)
        used |= {(*path, name)} if n and name in filed else set()
    if not used or source is None:
        return message
    values = {".".join(at): in_file[at] for at in sorted(used)}
    unseen = {key: value for key, value in values.items() if not _shows(message, value)}
    if len(unseen) == 1 and len(values) == 1:
        message += f" (given: {next(iter(unseen.values()))!r})"
    elif unseen:
        message += f" (given: {', '.join(f'{key}={value!r}' for key, value in unseen.items())})"
    return f"--config {source}: {message}"


def _shows(message: str, value: Any) -> bool:
    """Whether `message` shows `value` already (a check's `..., not -1`)."""
    texts = {repr(value), str(value)}
    number = value.exact if isinstance(value, yaml_core.Written) else value  # a file's `0x10`, told as 16
    if isinstance(number, Decimal) and number.is_finite() and abs(number) < 10**30:
        number = int(number) if number == number.to_integral_value() else float(number)
    if isinstance(number, int | float) and not isinstance(number, bool):
        texts.add(f"{number:,}")
        texts.add(repr(number))
    return any(re.search(rf"(?<![\w.]){re.escape(t)}(?![\w])", message) for t in texts)


def _config_at(cls: type, path: tuple[str, ...]) -> type:
    """The config class nested in `cls` at the chain of field names `path`."""
    for name in path:
        cls = _split_optional(typing.get_type_hints(cls)[name])[0]
    return cls


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        *parents, name = key.split("__")
        node = nested
        for p in parents:
            node = node.setdefault(p, {})
        node[name] = value
    return nested


def _merge(base: dict[str, Any], top: Mapping[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """`top` (the command line's settings, nested) over `base` (a file's). ValueError, as
    `_build` words it, where the file gives a section of settings as something else
    (`segment: 5`): the command line's settings of that section had replaced it unseen."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and key in merged and not isinstance(merged[key], Mapping):
            raise ValueError(f"{'.'.join((*path, key))}: expected a mapping of its settings, got {merged[key]!r}")
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value, (*path, key))
        else:
            merged[key] = value
    return merged


def _build(
    cls: type[T], values: Mapping[str, Any], path: tuple[str, ...], default: Any = None, omitted: Iterable[str] = ()
) -> T:
    """`cls` from the settings `values` gives; the others from `default` (the enclosing
    config's default for this field, itself a `cls`) or, None, from `cls`'s own defaults.
    A nested config's omitted settings are refused where `values` gives them, and only there:
    a default's own are no user's. `omitted`: the settings of `cls` the enclosing field
    omits, left out of the known ones an unknown setting's message lists."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{'.'.join(path)}: expected a mapping of its settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(yaml_core.shown_key(k) for k in set(values) - set(names))
    where = f"{'.'.join(path)} " if path else ""
    if unknown:
        known = [name for name in names if name not in set(omitted)]
        raise ValueError(f"unknown {where}option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp, _ = _split_optional(hints[f.name])
        start = _default(f) if default is None else getattr(default, f.name)
        nested_start = None if start is dataclasses.MISSING else start  # a nested config's own default, or None
        if f.name not in values:
            if is_config(tp) and nested_start is not None:
                kwargs[f.name] = _build(tp, {}, (*path, f.name), nested_start)
            elif default is not None:
                kwargs[f.name] = start
            continue
        value = values[f.name]
        name = ".".join((*path, f.name))
        if is_config(tp):
            if value is None and start is not None:
                raise ValueError(f"{name}: expected a mapping of its settings, got null")
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(f"{name}: expected a mapping of its settings, got {value!r}")
            omit = f.metadata.get("omit", ())
            fixed = sorted(set(omit) & set(value or {}))
            if fixed:
                raise ValueError(f"{name}: {', '.join(fixed)}: not a setting of this command (it sets or ignores it)")
            kwargs[f.name] = None if value is None else _build(tp, value, (*path, f.name), nested_start, omit)
        else:
            kwargs[f.name] = coerce(value, hints[f.name], name)
    missing = [f.name for f in dataclasses.fields(cls) if _default(f) is dataclasses.MISSING and f.name not in kwargs]  # type: ignore[arg-type]
    if missing:
        raise _Unset(f"missing {where}option(s) {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"{where}{err}".strip()) from None
    except ValueError as err:
        if isinstance(err, _NestedError):
            raise
        raise _NestedError(str(err), path, names) from None


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain YAML/JSON values (tuples as lists, datetimes as ISO strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(dataclasses.asdict(config))


def to_yaml(config: Any) -> str:
    """The YAML a user can edit and pass back with `--config`: every setting but those
    the command sets itself (a nested config's metadata "omit"), which `--config` refuses."""
    return yaml.dump(_settable(config, to_dict(config)), Dumper=yaml_core.Dumper, sort_keys=False, allow_unicode=True)


def _settable(config: Any, values: dict[str, Any]) -> dict[str, Any]:
    """`values` (`to_dict(config)`) without the settings of nested configs that their
    field omits, at every depth."""
    out = dict(values)
    for f in dataclasses.fields(config):
        child = getattr(config, f.name)
        if dataclasses.is_dataclass(child) and isinstance(out.get(f.name), dict):
            omitted = set(f.metadata.get("omit", ()))
            out[f.name] = {k: v for k, v in _settable(child, out[f.name]).items() if k not in omitted}
    return out


def flat(config: Any) -> dict[str, Any]:
    """A config as one level of `a.b.c` keys (MLflow parameters)."""

    def walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f"{prefix}{k}.")
        else:
            yield prefix[:-1], value

    return dict(walk(to_dict(config), ""))
