"""Command-line options derived from a job's config dataclass (see `workflows.config`).

`command(app, JobConfig)(fn)` registers `fn(config, **extras)` as a typer command
whose options are the config's fields (nested configs flattened, with their
prefixes), each `None` unless given, plus `--config FILE.yaml` and
`--print-config`. The function's own parameters after the first (`--json`, say:
how to print, not what to do) stay ordinary typer parameters. So a field added to
a config is an option of every command that runs it, with its help text, choices
and default shown once, from the field.

Why our own ~100 lines: typer builds commands from a function's signature and has
no notion of dataclasses; libraries that do derive CLIs from dataclasses
(jsonargparse, tyro, cyclopts) each replace typer as the command-line framework, and
typer-config only feeds a YAML file into typer's defaults (the very way a default
overrides the file, the bug this replaces). Here the signature is built from the
fields and typer does the rest.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from workflows.cli.common import fail, say_error
from workflows.config import Leaf, build, leaves, read_yaml, to_yaml
from workflows.errors import USER_ERRORS, ends_in_a_stop, tell_stop
from workflows.jobs.common import naming_read_settings, nothing_left_on_error

try:  # typer 0.2x parses with a click of its own, typer._click; older typers with click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:
    from click.exceptions import NoArgsIsHelpError, UsageError

PRINT_HELP = "Print the settings as YAML and stop (null: a default that depends on another setting)."
CONFIG_HELP = "A YAML file of this command's settings (write one with --print-config); options given override it."


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, datetime):
        return value.isoformat()
    return "not set" if value is None else str(value)


def _given(value: Any, leaf: Leaf) -> Any:
    """An option's value as the config takes it: None when not given; the values of a
    list option split at commas (not those of a positional argument: file names). A
    list option given only empty values (`--click-probs ''`) is an empty list, for the
    config to take or refuse: it was taken as not given, the default kept unsaid."""
    if not isinstance(value, list | tuple):
        return value
    if not value:
        return None
    if not leaf.argument:
        value = [item.strip() for v in value for item in v.split(",") if item.strip()]
    return value


def annotation(leaf: Leaf) -> Any:
    """The typer annotation of one setting: its type (None when not given) and option."""
    shown = leaf.shown or _shown(leaf.default)
    default = " [required]" if leaf.default is dataclasses.MISSING else f" [{shown}]"
    help_text = leaf.described
    if leaf.argument:
        tp = list[str] if leaf.sequence else str
        return Annotated[tp | None, typer.Argument(help=help_text, show_default=False, metavar=leaf.path[-1].upper())]
    decls = [f"--{leaf.option}", *([leaf.short] if leaf.short else [])]
    kwargs: dict[str, Any] = {"help": help_text + default, "show_default": False}
    if leaf.type is bool:
        decls[0] = f"--{leaf.option}/--no-{leaf.option}"
        tp: Any = bool
    elif leaf.sequence:
        tp = list[str]  # repeatable, and each value may list several, comma-separated
        (inner, *_) = typing.get_args(leaf.type) or (str,)
        kwargs["metavar"] = f"<{getattr(inner, '__name__', 'str')},...>"
    elif leaf.type in (int, float):  # read by the config as a --config file's number is (`config.coerce`)
        tp, kwargs["metavar"] = str, f"<{leaf.type.__name__}>"
    else:
        tp = str
    if leaf.choices:
        tp = Literal[leaf.choices]  # typer offers them as choices
    return Annotated[tp | None, typer.Option(*decls, **kwargs)]


class _Command(TyperCommand):
    """A typer command whose arguments' help rows show their name and help, not the
    Python type typer would add (`INPUTS <list[str]>`): what an argument takes (files,
    directories, URIs) is in its help; and whose command-line mistakes that click finds
    (an unknown option, a value of the wrong type or not among the choices) are told in
    one line, as every other refusal (`_UsageError`); an option that takes one value given
    twice is refused (`_given_twice`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.display_type = lambda ctx: ""  # type: ignore[method-assign]

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if said := _given_twice(self.params, args):
            raise UsageError(said, ctx)
        return super().parse_args(ctx, args)


def _given_twice(params: list[Any], args: list[str]) -> str | None:
    """Which option of `params` that takes one value (not `multiple`: `--config` says its
    own) the command line `args` gives more than once, by any of its names (`-o` and
    `--output`; `--overwrite` and `--no-overwrite`), and how often, as a message; None
    where none is. click kept the last one alone, the others dropped unsaid (`--output A
    --output B` wrote to B: the scoring breaker's find), a short one with its value joined
    (`-ob.tsv`) too. A flag repeated by one name (`--json --json`) says one thing and
    passes; its two names (`--overwrite --no-overwrite`) do not. Words after `--` are no
    options."""
    seen: dict[str, int] = {}
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
        elif arg.startswith("-") and len(arg) > 1:
            name = arg[:2]  # `-o`, `-ofile`, `-o=file`
        else:
            continue
        seen[name] = seen.get(name, 0) + 1
    for param in params:
        if isinstance(param, TyperOption) and not param.multiple and not param.count:
            names = [*param.opts, *param.secondary_opts]
            used = [name for name in names if seen.get(name)]
            times = sum(seen[name] for name in used)
            if times > 1 and (len(used) > 1 or not param.is_flag):
                return f"{' and '.join(used)} given {times} times: give it once"
    return None


class Group(TyperGroup):
    """A typer group (`sessionflow`, `sessionflow train`, `sessionflow evaluate`) whose
    mistakes (`sessionflow bogus`, an unknown option of its own) are told in one line,
    as its commands' are (`_UsageError`); with no command, it shows its help."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def resolve_command(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().resolve_command(*args, **kwargs)


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """Re-raise click's usage errors as `_UsageError`, but the one that shows a group's help."""
    try:
        yield
    except NoArgsIsHelpError:
        raise
    except UsageError as err:
        raise _UsageError(err.format_message(), err.ctx) from None


class _UsageError(UsageError):
    """A mistake click found on the command line, told as `error: ...; see 'sessionflow
    segment --help'` and exit 2: click's own showed its usage and a hint over four lines
    (and typer's parser began a wrong value's reason with "Value error, ")."""

    def show(self, file: Any = None) -> None:
        said = self.message.replace("Value error, ", "").rstrip(".")
        if self.ctx is not None:  # after a question (`Did you mean 'session'?`), a sentence of its own
            said += f"{' S' if said.endswith('?') else '; s'}ee '{self.ctx.command_path} --help'"
        say_error(said)


def command(app: typer.Typer, config_cls: type, name: str | None = None) -> Callable[[Callable], Callable]:
    """Register `fn(config, **extras)` on `app` with options derived from `config_cls`.

    A bad setting (unknown YAML key, wrong type, values the config's checks reject)
    and a ValueError or FileNotFoundError raised by `fn` end as one line on stderr
    and exit status 2, never a traceback.
    """

    def register(fn: Callable) -> Callable:
        settings = list(leaves(config_cls))
        by_key = {leaf.key: leaf for leaf in settings}
        own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
        params = [
            inspect.Parameter(leaf.key, inspect.Parameter.KEYWORD_ONLY, annotation=annotation(leaf), default=None)
            for leaf in settings
        ]
        params += [
            inspect.Parameter("config_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
                list[Path] | None, typer.Option("--config", help=CONFIG_HELP, metavar="<path>")]),  # once: `run`
            inspect.Parameter("print_config", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
                bool, typer.Option("--print-config", help=PRINT_HELP)]),
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own),
        ]  # fmt: skip

        def run(**values: Any) -> None:
            config_files, print_config = values.pop("config_file") or [], values.pop("print_config")
            if len(config_files) > 1:  # click kept the last one alone, the others' settings dropped unsaid
                raise fail(f"--config given {len(config_files)} times ({', '.join(map(str, config_files))}): give "
                           "one file; options on the command line override its settings")  # fmt: skip
            config_file = config_files[0] if config_files else None
            extras = {p.name: values.pop(p.name) for p in own}
            given = {key: _given(value, by_key[key]) for key, value in values.items()}
            try:
                config = build(config_cls, read_yaml(config_file), given, source=config_file)
            except USER_ERRORS as err:
                raise fail(str(err)) from None
            if print_config:
                typer.echo(to_yaml(config), nl=False)
                return
            # a --config file names every setting when `--print-config` wrote it: the command line's alone count
            named = {by_key[key].path[-1] for key, value in given.items()
                     if value is not None and by_key[key].path[0] == "read"}  # fmt: skip
            try:
                with nothing_left_on_error(), naming_read_settings(frozenset(named)):  # one line, no output left
                    fn(config, **extras)
            except BaseException as err:
                if ends_in_a_stop(err):  # what the job started has ended (an MLflow run FAILED, Ray shut down)
                    raise typer.Exit(tell_stop()) from None
                if isinstance(err, USER_ERRORS):
                    raise fail(str(err)) from None
                raise

        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        run.__name__, run.__doc__ = fn.__name__, fn.__doc__
        app.command(name, cls=_Command)(run)
        return fn

    return register
