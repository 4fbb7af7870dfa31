"""A --config file, and a number given as an option, are read by YAML 1.2's core schema
(`workflows.yaml_core`). PyYAML's YAML 1.1 read `gap_minutes: 1:30` as 90, `window: 010`
as 8, `0b11` as 3, `1_000` as 1000, a name `no` or `on` as a boolean and `2006-03-01` as
a date: a user's setting silently changed. Each is now read as YAML 1.2 reads it, or
refused in one line that says what to write; never another value. `--print-config`
writes what reads back the same, by YAML 1.2 and 1.1 alike."""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
import typing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from workflows import yaml_core
from workflows.cli import COMMANDS, app
from workflows.config import Leaf, build, coerce, leaves, read_yaml, to_dict, to_yaml

runner = CliRunner()
SEGMENT, SYNTH = ["segment", "x", "-o", "o"], ["synth", "-o", "s.tsv"]
# a setting of each kind: the command that takes it, its keys in a file, its option
FLOAT = (SEGMENT, ("segment", "gap_minutes"), "--gap-minutes")
INT = (SEGMENT, ("missions", "window"), "--mission-window")
ANY_INT = (SEGMENT, ("segment", "so_far_queries"), "--so-far-queries")  # at least 1, no more
TEXT = (SEGMENT, ("model",), "--model")
TEXTS = (SEGMENT, ("read", "unknown_user"), "--unknown-user")
ONE_TEXT = (SEGMENT, ("read", "unknown_user"), "--unknown-user")  # given one value, not a list
BOOL = (SEGMENT, ("read", "strict"), None)  # --strict/--no-strict: no value to read
CHOICE = (SEGMENT, ("segment", "method"), "--method")
WHEN = (SYNTH, ("synth", "start"), "--start")


@dataclasses.dataclass(frozen=True)
class Refused:
    """A one-line refusal that says `said` (after the setting's name)."""

    said: str


LEADING_ZERO = "has a leading zero, octal to YAML 1.1 and decimal to YAML 1.2: write"
BEYOND_64_BITS = f"is out of range (a 64-bit integer: at most {2**63 - 1:,})"
BASE_60 = "(YAML 1.1's base 60 is text to YAML 1.2: write one number)"
# (setting, as written, what --print-config shows or the refusal); the old reading in the comment
READINGS = [
    (FLOAT, "1:30", Refused(f"'1:30' is not of type float {BASE_60}")),  # 90.0
    (FLOAT, "1:30.5", Refused(f"'1:30.5' is not of type float {BASE_60}")),  # 90.5
    (INT, "1:30", Refused(f"'1:30' is not of type int {BASE_60}")),  # 90
    (INT, "010", Refused(f"010 {LEADING_ZERO} 10, or 0o10 for octal")),  # 8
    (FLOAT, "010", Refused(f"010 {LEADING_ZERO} 10, or 0o10 for octal")),  # 8.0
    (INT, "-010", Refused(f"-010 {LEADING_ZERO} -10")),  # -8
    (INT, "09", Refused(f"09 {LEADING_ZERO} 9")),  # PyYAML: the text '09'
    (INT, "0x1F", 31),
    (INT, "0o17", 15),  # PyYAML: the text '0o17'
    (INT, "0b11", Refused("'0b11' is not of type int (YAML 1.2 has no binary numbers: write 3)")),  # 3
    (INT, "1_000", Refused("'1_000' is not of type int (YAML 1.2 reads no _ between digits: write 1000)")),  # 1000
    (FLOAT, "1_000.5", Refused("'1_000.5' is not of type float (YAML 1.2 reads no _ between digits: write 1000.5)")),
    (FLOAT, "1e-4", 0.0001),
    (FLOAT, "0x10", 16.0),
    (BOOL, "yes", Refused("'yes' is not of type bool (write true or false)")),  # True
    (BOOL, "Off", Refused("'Off' is not of type bool (write true or false)")),  # False
    (BOOL, "NO", Refused("'NO' is not of type bool (write true or false)")),  # False
    (BOOL, "010", Refused("010 is not of type bool")),  # 8 is not of type bool
    (BOOL, "true", True),
    (BOOL, "False", False),
    (CHOICE, "no", Refused("'no' is not one of")),  # False is not one of ...
    (CHOICE, "0x1F", Refused("0x1F is not one of")),  # 31 is not one of ...
    *((TEXT, word, word) for word in ("no", "on", "Yes", "OFF")),  # refused: False is not of type str
    *((TEXT, number, number) for number in ("010", "007", "-010", "0x1F", "0b11", "1:30", "1_000", "+5")),  # '8', ...
    (TEXT, "2006-03-01", "2006-03-01"),  # refused: datetime.date(2006, 3, 1) is not of type str
    (TEXT, "1.10", "1.10"),  # refused: 1.1 is not of type str
    (TEXT, "1e-4", "1e-4"),  # refused: 0.0001 is not of type str
    (TEXT, "0o17", "0o17"),
    (TEXTS, "010,no,0x1F,2006-03-01,1:30", ["010", "no", "0x1F", "2006-03-01", "1:30"]),  # ['8', ...] refused
    # one value for a list of text is a list of that text as written: `unknown_user: 08` was refused,
    # "expected a list, got 08" (the YAML breaker's find 4; YAML 1.1 had given ['08']), as were 0 and -1
    *((ONE_TEXT, one, [one]) for one in ("08", "0o10", "+.5", "-.5", "-1", "0", "1e3", "guest", "-0x10", "1:30")),
    (WHEN, "2006-03-01", "2006-03-01T00:00:00+00:00"),
    (WHEN, "2006-03-01 10:00:00", "2006-03-01T10:00:00+00:00"),
    # a number is read from its text, to the digit (the YAML breaker's finds: through a float,
    # 9007199254740993.0 was ...992 and 1e-400 was 0 without a word; a number of over 4,300 digits
    # was Python's "Exceeds the limit (4300 digits) for integer string conversion", naming no key,
    # even for a text setting; 1e400 and .inf were told as inf, .5 as 0.5)
    (ANY_INT, "9007199254740993.0", 9007199254740993),  # 9007199254740992
    (ANY_INT, "10000000000000001e0", 10000000000000001),  # 10000000000000000
    (ANY_INT, "1e-400", Refused("1e-400 is not of type int")),  # 0
    (ANY_INT, ".5", Refused(".5 is not of type int")),
    (ANY_INT, ".inf", Refused(".inf is not of type int")),
    (ANY_INT, "1e400", Refused(f"1e400 {BEYOND_64_BITS}")),
    (ANY_INT, "9" * 5000, Refused(f"an integer of 5,000 digits {BEYOND_64_BITS}")),
    (FLOAT, "1e-400", Refused("1e-400 is too near 0 for a float, which would read it as 0 (write 0 if 0 is meant)")),
    (FLOAT, "1e-300", 1e-300),
    (FLOAT, "1e400", Refused("1e400 is beyond a float's range (at most about 1.8e308)")),
    (FLOAT, "9" * 5000, Refused("an integer of 5,000 digits is beyond a float's range (at most about 1.8e308)")),
    (FLOAT, ".inf", Refused(".inf is not a finite number")),
    (FLOAT, "-.inf", Refused("-.inf is not a finite number")),
    (FLOAT, ".nan", Refused(".nan is not a finite number")),
    (TEXT, "1" * 5000, "1" * 5000),
]
IDS = [f"{setting[1][-1]}={written[:24]}" for setting, written, _ in READINGS]


def file_text(path: tuple[str, ...], value: str, listed: bool = False) -> str:
    """A YAML file giving the setting at `path` the plain scalar `value` (a list of the
    comma-separated values, one an item, where `listed`)."""
    lines = [f"{'  ' * i}{key}:" for i, key in enumerate(path[:-1])]
    last = "  " * (len(path) - 1) + f"{path[-1]}:"
    if listed:
        return "\n".join([*lines, last, *(f"{'  ' * len(path)}- {v}" for v in value.split(","))]) + "\n"
    return "\n".join([*lines, f"{last} {value}"]) + "\n"


def get(mapping, path):
    for key in path:
        mapping = mapping[key]
    return mapping


@pytest.mark.parametrize(("setting", "written", "expected"), READINGS, ids=IDS)
def test_a_yaml_1_1_form_in_a_file_is_read_as_yaml_1_2_reads_it_or_refused(setting, written, expected, tmp_path):
    words, path, _ = setting
    config = tmp_path / "c.yaml"
    config.write_text(file_text(path, written, listed=setting is TEXTS))
    result = runner.invoke(app, [*words, "--config", str(config), "--print-config"])
    if isinstance(expected, Refused):
        said = f"error: --config {config}: {'.'.join(path)}: {expected.said}"
        assert result.exit_code == 2 and result.output.startswith(said), result.output
        assert result.output.count("\n") == 1, result.output
    else:
        assert result.exit_code == 0, result.output
        assert get(yaml.safe_load(result.output), path) == expected


@pytest.mark.parametrize(
    ("setting", "written", "expected"), [r for r in READINGS if r[0][2] and r[0] is not CHOICE],
    ids=[i for i, r in zip(IDS, READINGS, strict=True) if r[0][2] and r[0] is not CHOICE],
)  # fmt: skip
def test_the_same_form_as_an_option_is_read_by_the_same_rule(setting, written, expected):
    """An option's number was Python's: `--gap-minutes 1_000` was 1000, `0x1F` refused
    by the parser; now it is the file's rule, and the same words say what to write."""
    words, path, flag = setting
    result = runner.invoke(app, [*words, flag, written, "--print-config"])
    if isinstance(expected, Refused):
        assert result.exit_code == 2 and result.output == f"error: {flag}: {expected.said}\n", result.output
    else:
        assert result.exit_code == 0, result.output
        assert get(yaml.safe_load(result.output), path) == expected


def test_a_choice_given_a_yaml_1_1_word_as_an_option_is_refused_by_the_parser():
    result = runner.invoke(app, [*SEGMENT, "--method", "no"])
    assert result.exit_code == 2 and "'no' is not one of 'time', 'lexical', 'cascade', 'learned'" in result.output


def test_a_tag_does_not_bring_yaml_1_1_back():
    """`!!int 010` is 10 (YAML 1.2's decimal); `!!int 1_000`, `!!bool yes` no YAML 1.2
    value, refused by the setting they are given (`AS_WRITTEN`)."""
    assert yaml.load("a: !!int 010\nb: !!float 1\n", Loader=yaml_core.Loader) == {"a": 10, "b": 1.0}


# A file's mistake is told by its key, the value as written, in a user's words (the YAML
# breaker's find 8: `!!int 0b11` was told by its line alone, not its key and what to write;
# `!!str 5` was told to lose quotes it had not; a file `5` "got WrittenInt"; a key given twice
# was named without its section; `-0x10` was refused with no word of what to write)
AS_WRITTEN = [
    ("5\n", "expected a mapping of a job's settings, got a number"),
    ("- 5\n", "expected a mapping of a job's settings, got a list"),
    ("segment:\n  so_far_queries: !!int 0b11\n",
     "segment.so_far_queries: !!int '0b11' is no YAML 1.2 integer (YAML 1.2 has no binary numbers: write 3)"),
    ("segment:\n  gap_minutes: !!int 1_000\n",
     "segment.gap_minutes: !!int '1_000' is no YAML 1.2 integer (YAML 1.2 reads no _ between digits: write 1000)"),
    ("segment:\n  gap_minutes: !!float 1:30\n",
     f"segment.gap_minutes: !!float '1:30' is no YAML 1.2 float {BASE_60}"),
    ("read:\n  strict: !!bool yes\n", "read.strict: !!bool 'yes' is no YAML 1.2 boolean (write true or false)"),
    ("model: !!int 0b11\n", "model: !!int '0b11' is no YAML 1.2 integer (YAML 1.2 has no binary numbers: write 3)"),
    ("model: !!null 5\n", "model: !!null '5' is no YAML 1.2 null"),  # PyYAML's: null, unsaid
    ("segment:\n  gap_minutes: !!str 5\n",
     "segment.gap_minutes: '5' is not of type float (a number tagged !!str: write it without the tag)"),
    ("segment:\n  gap_minutes: |-\n    5\n",
     "segment.gap_minutes: '5' is not of type float (a number in a block scalar: write it after the key, on its line)"),
    ("segment:\n  gap_minutes: '5'\n",
     "segment.gap_minutes: '5' is not of type float (a number in quotes: write it without them)"),
    ("segment:\n  gap_minutes: -0x10\n",
     "segment.gap_minutes: '-0x10' is not of type float (YAML 1.2 has no sign before 0x: write -16)"),
    ("segment:\n  gap_minutes: 20\n  gap_minutes: 30\n",
     "not valid YAML ('gap_minutes' given twice in segment, on lines 2 and 3)"),
    ("synth:\n  start: !!timestamp 2006-13-01\n", "not valid YAML ('month must be in 1..12')"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "said"), AS_WRITTEN, ids=[said[:60] for _, said in AS_WRITTEN])
def test_a_files_mistake_is_told_by_its_key_as_written(text, said, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    words = SYNTH if "synth" in text else ["segment", "x"]  # no -o: `output` is the file's to give
    result = runner.invoke(app, [*words, "--config", str(path), "--print-config"])
    assert result.exit_code == 2 and result.output == f"error: --config {path}: {said}\n", result.output


def test_an_options_signed_hexadecimal_says_what_to_write():
    result = runner.invoke(app, [*SEGMENT, "--so-far-queries", "-0x10", "--print-config"])
    said = "'-0x10' is not of type int (YAML 1.2 has no sign before 0x: write -16)"
    assert result.exit_code == 2 and result.output == f"error: --so-far-queries: {said}\n", result.output


def test_a_merge_key_still_merges_and_an_equals_sign_is_text(tmp_path):
    """`<<` is kept beside the 1.2 schema (PyYAML's 1.1 `=`, a "value" tag, made the whole
    file invalid YAML; it is the text '=')."""
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {gap_minutes: 20}\nsegment:\n  <<: *b\n  method: time\nmodel: =\n")
    assert read_yaml(path) == {"base": {"gap_minutes": 20}, "segment": {"gap_minutes": 20, "method": "time"},
                               "model": "="}  # fmt: skip


# A YAML 1.1 form that YAML 1.2 reads otherwise, with YAML 1.2's reading: text (None here)
# for all but a decimal with a leading zero (`010`: 1.1's octal 8, 1.2's 10)
def _cased(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.title(), word.upper()])


def _written_times(when: datetime) -> st.SearchStrategy[str]:
    """A date, or a date and time, as YAML 1.1 reads a timestamp (1.2: text)."""
    return st.sampled_from([when.date().isoformat(), f"{when:%Y-%m-%d %H:%M:%S}", f"{when:%Y-%m-%dT%H:%M:%S}Z"])


DIGITS = st.text("0123456789", min_size=1, max_size=4)
SIGN = st.sampled_from(["", "-", "+"])
BASE_60_FORMS = st.builds(
    lambda sign, head, tail, fraction: f"{sign}{head}{''.join(f':{t:02d}' for t in tail)}{fraction}",
    SIGN, st.integers(0, 999), st.lists(st.integers(0, 59), min_size=1, max_size=3),
    st.sampled_from(["", ".5", ".25", "."]),
)  # fmt: skip
GROUPED = st.builds(
    lambda sign, parts, fraction: f"{sign}{'_'.join(parts)}{fraction}",
    SIGN,
    st.lists(st.text("0123456789", min_size=1, max_size=3), min_size=2, max_size=4),
    st.sampled_from(["", ".5", ".0_1"]),
).filter(lambda text: not re.fullmatch(r"[-+]?0[0-9_]*", text))  # 1.1's octal with a _, below
YAML_1_1_FORMS = st.one_of(
    BASE_60_FORMS.map(lambda text: (text, None)),
    GROUPED.map(lambda text: (text, None)),
    st.builds(lambda sign, digits: f"{sign}0{digits}", SIGN, DIGITS).map(lambda text: (text, int(text))),
    st.builds(lambda sign, bits: f"{sign}0b{bits}", SIGN, st.text("01_", min_size=1, max_size=6)).map(
        lambda text: (text, None)
    ),
    st.builds(lambda digits: f"0x{digits}", st.text("0123456789abcdefABCDEF_", min_size=1, max_size=5))
    .filter(lambda text: "_" in text)
    .map(lambda text: (text, None)),
    st.sampled_from(["yes", "no", "on", "off", "y", "n"]).flatmap(_cased).map(lambda text: (text, None)),
    st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1)).flatmap(_written_times).map(lambda text: (text, None)),
    st.just(("=", None)),
)
LEAVES = [(config, leaf) for _, _, config, _ in COMMANDS for leaf in leaves(config)]
REFUSED = object()


def _taken(leaf: Leaf, written: str, reading: int | None) -> object:
    """What a setting may hold for `written`, which YAML 1.2 reads as `reading` (None:
    text); REFUSED where nothing but a refusal is right. Text is taken as written."""
    if leaf.type is str:
        return written
    if leaf.type in (int, float) and reading is not None:
        return leaf.type(reading)
    if leaf.type is datetime and reading is None:
        try:
            when = datetime.fromisoformat(written)
        except ValueError:
            return REFUSED
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return REFUSED


def _check(leaf: Leaf, name: str, built, err: ValueError | None, expected: object) -> None:
    """Refused in one line naming the setting (`name`), or taken as `expected`: never another value."""
    if err is not None:
        said = str(err)
        assert "\n" not in said and name in said, (leaf.key, said)
        return
    taken = built
    for key in leaf.path:
        taken = getattr(taken, key)
    assert expected is not REFUSED and taken == expected, (leaf.key, taken, expected)


def _build(config, values=None, overrides=None):
    try:
        return build(config, values, overrides, source="c.yaml"), None
    except ValueError as err:
        return None, err


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_yaml_1_1_only_form_for_any_setting_is_yaml_1_2s_value_or_one_line_refusal(data):
    """For every setting of every command, any plain scalar that YAML 1.1 reads otherwise
    than YAML 1.2 (base 60, a leading zero, binary, digits grouped by _, yes/no/on/off/y/n
    in any case, dates and times, `=`), in a --config file and as the option, is YAML
    1.2's value (text as written, for a text setting) or refused in one line naming the
    setting (the file's key, the option): never YAML 1.1's value, or any other."""
    config, leaf = data.draw(st.sampled_from(LEAVES), label="setting")
    written, reading = data.draw(YAML_1_1_FORMS, label="written")
    inner = dataclasses.replace(leaf, type=_item(leaf.type)) if leaf.sequence else leaf
    expected = _taken(inner, written, reading)
    expected = (expected,) if leaf.sequence and expected is not REFUSED else expected
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(file_text(leaf.path, written, listed=leaf.sequence))
        built, err = _build(config, read_yaml(path))
    _check(leaf, ".".join(leaf.path), built, err, expected)
    if leaf.type is bool:  # --x/--no-x: no value to read
        return
    built, err = _build(config, overrides={leaf.key: [written] if leaf.sequence else written})
    _check(leaf, leaf.given, built, err, expected)


def _item(tp) -> type:
    (inner,) = {*typing.get_args(tp)} - {Ellipsis}
    return inner


# Text that reads as another value in YAML 1.1 or 1.2 unquoted: --print-config must quote it
TRICKY_TEXT = st.sampled_from(["no", "On", "y", "010", "0o17", "0x1F", "1:30", "1_000", "0b11", "1e5", ".inf",
                               "true", "null", "~", "", "2006-03-01", "=", "<<", "+5", "-.5", "1."])  # fmt: skip


def right_values(leaf: Leaf) -> st.SearchStrategy:
    """Values of the leaf's own type, text among them that YAML reads as another value unquoted."""
    if leaf.choices:
        return st.sampled_from(leaf.choices)
    if leaf.sequence:
        return st.lists(right_values(dataclasses.replace(leaf, type=_item(leaf.type), choices=None)), max_size=3)
    return {
        bool: st.booleans(),
        int: st.integers(-(2**63), 2**63 - 1),
        float: st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6),
        str: TRICKY_TEXT | st.text(max_size=8),
        datetime: st.datetimes(timezones=st.just(UTC)),
    }[leaf.type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_printed_config_reads_back_to_the_same_settings(data):
    """For every setting of every command, any value it takes: what `--print-config`
    prints (`to_yaml`), `--config` reads back to the same settings (`'no'`, `'010'`,
    `'1e5'` are quoted, and stay text); and a YAML 1.1 reader (PyYAML's own) reads the
    same values from it."""
    config, leaf = data.draw(st.sampled_from(LEAVES), label="setting")
    value = data.draw(right_values(leaf), label="value")
    values: dict = {}
    node = values
    for key in leaf.path[:-1]:
        node = node.setdefault(key, {})
    node[leaf.path[-1]] = value
    first, err = _build(config, values)
    if err is not None:  # a value the config's own checks refuse (a range, a time zone): nothing to print
        return
    printed = to_yaml(first)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(printed)
        again, err = _build(config, read_yaml(path))
    assert err is None, (leaf.key, value, printed, err)
    assert to_dict(again) == to_dict(first), (leaf.key, value, printed)
    assert yaml.safe_load(printed) == yaml.load(printed, Loader=yaml_core.Loader), printed


# A user's value in a message is shown as `repr` writes it: quoted, and on one line whatever it
# holds. The YAML breaker's find: `--gap-minutes $'inf\n'` was told over two lines, `' nan '` unquoted.
ONE_LINE = [
    (["--gap-minutes", "inf\n"], None, "--gap-minutes: 'inf\\n' is not a finite number"),
    (["--gap-minutes", " nan "], None, "--gap-minutes: ' nan ' is not a finite number"),
    ([], 'segment:\n  gap_minutes: "inf\\n"\n', "segment.gap_minutes: 'inf\\n' is not a finite number"),
    ([], "segment:\n  gap_minutes: |\n    inf\n", "segment.gap_minutes: 'inf\\n' is not a finite number"),
    ([], 'segment:\n  "a\\nb": 1\n', "unknown segment option(s) 'a\\nb'; known: method, gap_minutes"),
]


@pytest.mark.parametrize(("options", "text", "said"), ONE_LINE, ids=[s for _, _, s in ONE_LINE])
def test_a_value_with_a_line_break_is_told_quoted_on_one_line(options, text, said, tmp_path):
    path = tmp_path / "c.yaml"
    if text is not None:
        path.write_text(text)
        options = ["--config", str(path)]
    result = runner.invoke(app, [*SEGMENT, *options, "--print-config"])
    prefix = f"--config {path}: " if text is not None else ""
    assert result.exit_code == 2 and result.output.startswith(f"error: {prefix}{said}"), result.output
    assert result.output.count("\n") == 1, result.output


BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # each a line break to str.splitlines
ODD_TEXT = st.builds(  # a word, a number, a choice or a date with line breaks, tabs or control characters about it
    lambda before, word, after: before + word + after,
    st.text(st.sampled_from([*BREAKS, "\t", "\x00", " "]), max_size=2),
    st.sampled_from(["inf", "nan", "5", "1e3", "time", "sessions", "2006-03-01", "a,b", ""]),
    st.text(st.sampled_from([*BREAKS, "\t", "\x1b", " "]), min_size=1, max_size=2),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_text_a_setting_refuses_is_told_on_one_line(data):
    """For every setting of every command, any text (line breaks of every kind, tabs,
    control characters among it), given in a --config file or as the option: refused in
    one line, which shows a line break as `repr` does (`'inf\\n'`); or taken."""
    config, leaf = data.draw(st.sampled_from(LEAVES), label="setting")
    value = data.draw(ODD_TEXT, label="text")
    values: dict = {}
    node = values
    for key in leaf.path[:-1]:
        node = node.setdefault(key, {})
    node[leaf.path[-1]] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.dump(values, Dumper=yaml_core.Dumper))
        _, err = _build(config, read_yaml(path))
    # (the refusal, whether it is of the text itself: a line break in it, where a type is read)
    shown = leaf.type is not str and not leaf.sequence and bool(set(value) & set(BREAKS))
    tries = [(err, shown)]
    if leaf.type is not bool:  # --x/--no-x: no value to read
        _, err = _build(config, overrides={leaf.key: [value] if leaf.sequence else value})
        number = leaf.type in (int, float) and isinstance(yaml_core.plain(value.strip()), yaml_core.Written)
        tries.append((err, shown and not number))  # an option's number may have spaces about it: ` 5\n` is 5
    for err, shown in tries:
        if err is None:
            continue
        said = str(err)
        assert said.splitlines() == [said], (leaf.key, value, said)
        assert not shown or repr(value) in said, (leaf.key, value, said)


# A YAML 1.2 number as it may be written: sign, digits, a fraction, an exponent (of any size)
NUMBER_TEXTS = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    SIGN,
    st.text("0123456789", max_size=22),
    st.sampled_from(["", ".", ".5", ".25", ".0"]) | st.text("0123456789", max_size=22).map(lambda digits: "." + digits),
    st.sampled_from(["", "e", "E"]).flatmap(lambda e: st.integers(-420, 420).map(lambda n: f"{e}{n:+d}" if e else "")),
).filter(lambda text: yaml_core.CORE["float"][0].fullmatch(text) and not yaml_core.leading_zero(text))


@settings(max_examples=150, deadline=None)
@given(text=NUMBER_TEXTS)
@example("9007199254740993.0")
@example("10000000000000001e0")
@example("1e-400")
@example("2.5e-324")
def test_a_number_setting_reads_the_number_written_to_the_digit(text):
    """Any number as written, in a --config file and as an option: an int setting takes
    it when it is a whole number of 64 bits, as that number exactly (through a float,
    `9007199254740993.0` was ...992); a float setting when a float holds it, as
    Python's float() of its text (`1e-400` was 0, `1e400` inf); else one line naming the
    setting and the number as written."""
    exact = Decimal(text)
    whole = exact == exact.to_integral_value() and -(2**63) <= exact < 2**63
    near = float(text)  # the float nearest the number written
    held = math.isfinite(near) and (near != 0 or exact == 0)
    file_value = yaml.load(f"k: {text}", Loader=yaml_core.Loader)["k"]
    for tp, taken, expected in ((int, whole, int(exact) if whole else None), (float, held, near)):
        for name, value, as_text in (("k", file_value, False), ("--k", text, True)):
            if taken:
                got = coerce(value, tp, name, text=as_text)
                assert type(got) is tp and got == expected, (text, tp, got)
                continue
            with pytest.raises(ValueError) as err:
                coerce(value, tp, name, text=as_text)
            said = str(err.value)
            assert said.startswith(f"{name}: ") and said.splitlines() == [said], said
            assert text in said or "digits" in said or "characters" in said, said


# Merge keys, as https://yaml.org/type/merge.html has them (the YAML breaker's find 5): a key twice
# in a mapping merged in, and `<<` twice, were taken (the last won); a mapping merged in one place
# and used whole in another was refused for a key its own merge brought in; and PyYAML kept the
# LAST of `<<: [*a, *b]` for a key of more than one character (the first for `k`)
MERGES = [
    ("segment:\n  <<: {min_overlap: 0.3, min_overlap: 0.2}\n",
     Refused("not valid YAML ('min_overlap' given twice in segment, on line 2)")),
    ("segment:\n  <<: {min_overlap: 0.3}\n  <<: {min_overlap: 0.2}\n",
     Refused("not valid YAML ('<<' given twice in segment, on lines 2 and 3; merge several mappings with one: "
             "<<: [*a, *b])")),
    ("segment:\n  <<: &s\n    <<: {min_overlap: 0.3}\n    min_overlap: 0.4\n  gap_minutes: 5\nmissions: *s\n",
     {("segment", "min_overlap"): 0.4, ("segment", "gap_minutes"): 5.0, ("missions", "min_overlap"): 0.4}),
    ("segment:\n  <<: [{min_overlap: 0.3, gap_minutes: 5}, {min_overlap: 0.2, method: time}]\n",
     {("segment", "min_overlap"): 0.3, ("segment", "gap_minutes"): 5.0, ("segment", "method"): "time"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), MERGES, ids=[t.splitlines()[1].strip()[:40] for t, _ in MERGES])
def test_a_merge_takes_each_key_once_and_the_first_mapping_wins(text, expected, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    result = runner.invoke(app, [*SEGMENT, "--config", str(path), "--print-config"])
    if isinstance(expected, Refused):
        assert result.exit_code == 2 and result.output == f"error: --config {path}: {expected.said}\n", result.output
        return
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert {path: get(printed, path) for path in expected} == expected


MERGE_KEYS = st.sampled_from(["k", "x", "key1", "gap", "min_overlap"])  # one character and more
MERGED = st.dictionaries(MERGE_KEYS, st.integers(0, 9), max_size=4)


@settings(max_examples=200, deadline=None)
@given(sources=st.lists(MERGED, min_size=1, max_size=3), own=MERGED, nested=st.booleans())
def test_a_merge_is_the_mappings_merged_in_the_first_winning_under_the_mappings_own(sources, own, nested):
    """Any list of mappings merged into a mapping with keys of its own (and each merged
    mapping itself made by a merge, `nested`): each key's value is the mapping's own, else
    that of the first mapping merged that gives it, as YAML's merge key says."""
    expected: dict = {}
    for source in reversed(sources):
        expected.update(source)
    expected.update(own)

    def flow(mapping: dict) -> str:
        return "{" + ", ".join(f"{k}: {v}" for k, v in mapping.items()) + "}"

    anchors = [f"s{i}: &s{i} " + (f"{{<<: {flow(s)}}}" if nested else flow(s)) for i, s in enumerate(sources)]
    merges = ", ".join(f"*s{i}" for i in range(len(sources)))
    own_keys = "".join(f"\n  {k}: {v}" for k, v in own.items())
    loaded = yaml.load("\n".join(anchors) + f"\nm:\n  <<: [{merges}]{own_keys}\n", Loader=yaml_core.Loader)
    assert loaded["m"] == expected
    assert [loaded[f"s{i}"] for i in range(len(sources))] == sources  # a mapping merged in stays itself
