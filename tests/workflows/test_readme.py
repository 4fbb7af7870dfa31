"""The README is tested by users: every `sessionflow` command it shows parses (its
subcommands exist, its options exist and take the values shown), and the models it
names are the aliases the demo and the training commands create."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from workflows.cli import COMMANDS, app
from workflows.cli.options import _given
from workflows.config import build, leaves

README = Path(__file__).resolve().parents[2] / "README.md"
REGISTERED = ("session-model", "hierarchy-model", "segmenter-model")


def shown_commands(text: str) -> list[str]:
    """Every `sessionflow ...` command line of the README's code blocks, continuation
    lines joined, comments dropped (also after `ray job submit ... --`)."""
    commands, blocks = [], re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" -- ", 1)[1] if line.startswith("ray job submit") and " -- " in line else line
            if line.strip().startswith("sessionflow "):
                commands.append(line.split("  #")[0].split(" # ")[0].strip())
    return commands


def parse(args: list[str]):  # -> the (typer-vendored) click command
    """Parse `args` as the shell would hand them to `sessionflow`, without running the
    command: the CLI's own usage errors for an unknown option or a bad value,
    LookupError for an unknown command; and the settings given built into the command's
    config (ValueError for a number that is none, `--workers many`, or one out of range),
    but where a --config file gives more of them."""
    command, words = typer.main.get_command(app), []
    while hasattr(command, "get_command"):  # a group: its subcommand
        name, args = args[0], args[1:]
        found = command.get_command(command.context_class(command), name)
        if found is None:
            raise LookupError(f"no command {name!r}")
        command, words = found, [*words, name]
    context = command.make_context(command.name or "sessionflow", list(args))
    if not context.params.get("config_file"):  # none given (a list: --config is refused twice, not dropped)
        config = CONFIGS[tuple(words)]
        settings = {leaf.key: leaf for leaf in leaves(config)}
        build(config, None, {key: _given(v, settings[key]) for key, v in context.params.items() if key in settings})
    return command


def _words(target, name: str) -> tuple[str, ...]:
    """The words that call a command: `segment`, `train session`."""
    group = next((g.name for g in app.registered_groups if g.typer_instance is target), None)
    return (group, name) if group else (name,)


CONFIGS = {_words(target, name): config for target, name, config, _ in COMMANDS}


def test_every_command_the_readme_shows_parses():
    commands = shown_commands(README.read_text())
    assert len(commands) >= 30, "the README's commands were not found"
    names = set()
    for line in commands:
        args = shlex.split(line)[1:]
        names.add(parse(args).name)  # raises on anything the CLI would refuse before running
    assert {"segment", "ingest", "mine", "score", "annotate", "session", "hierarchy", "segmenter", "crossval"} <= names


def test_the_models_the_readme_names_are_aliases_that_exist_after_the_demo():
    uris = re.findall(r"models:/[\w.-]+(?:[@/][\w.-]+)?", README.read_text())
    assert uris
    for uri in uris:
        name, sep, ref = re.split(r"([@/])", uri.removeprefix("models:/"), maxsplit=1)
        assert name in REGISTERED and sep == "@" and ref == "champion", uri


@pytest.mark.parametrize(
    ("bad", "says"),
    [(["segment", "x", "--no-such-option"], "No such option"), (["train", "sesion"], "no command"),
     (["train", "session", "--workers", "many"], "--workers: 'many' is not of type int"),
     (["segment", "x", "--gap-minutes", "1_000"], "no _ between digits: write 1000")],
)  # fmt: skip
def test_a_command_the_cli_refuses_is_caught(bad, says):
    with pytest.raises(Exception, match=says):
        parse(bad)


def test_the_rendered_notebooks_have_the_notebooks_code_as_it_is():
    """`make docs` executes the notebooks on the demo and renders them into docs/notebooks:
    a notebook changed since it was last rendered fails here (run `make demo docs`)."""
    import nbformat

    from workflows.jobs.demo_docs import NOTEBOOKS, RENDERED

    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert notebooks and {p.stem for p in notebooks} == {p.stem for p in RENDERED.glob("*.md")}
    for path in notebooks:
        rendered = (RENDERED / f"{path.stem}.md").read_text()
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert f"```python\n{cell.source}\n```" in rendered, (path.name, cell.source[:80])
        images = [line.split("](", 1)[1].rstrip(")") for line in rendered.splitlines() if line.startswith("![")]
        assert images and all((RENDERED / image).is_file() for image in images), path.name  # each draws


def test_the_readme_demo_table_is_generated_from_the_committed_summary():
    """`make docs` writes the table from a demo's summary.json (docs/demo-summary.json, a
    copy of the last run's): the README cannot show figures no run printed."""
    import json

    from workflows.jobs.demo_docs import SUMMARY_COPY, readme_block, readme_table

    summary = json.loads(SUMMARY_COPY.read_text())
    assert readme_block(README.read_text()) == readme_table(summary)
    assert summary["numbers"]["ingest"]["rows_in"] == summary["numbers"]["synth"]["rows"]


def test_the_committed_summary_names_paths_in_the_repository_not_on_one_machine():
    """`make docs` copied the demo's summary with its absolute paths (`/work/main/out/demo/...`,
    one machine's checkout); the copy names them relative to the repository."""
    import json

    from workflows.jobs.demo_docs import ROOT, SUMMARY_COPY, relative_to_root

    def strings(value):
        if isinstance(value, dict):
            yield from (s for item in value.values() for s in strings(item))
        elif isinstance(value, list):
            yield from (s for item in value for s in strings(item))
        elif isinstance(value, str):
            yield value

    summary = json.loads(SUMMARY_COPY.read_text())
    assert summary["log"] == "out/demo/synth-aol.tsv.gz"
    assert not [s for s in strings(summary) if s.startswith("/") or "/work/main/" in s]
    assert summary["mlflow_ui"] == ".venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --workers 1"
    given = {"log": f"{ROOT}/out/demo/x.tsv", "figures": [f"{ROOT}/out/f.png", "/elsewhere/g.png"], "n": 3,
             "name": f"{ROOT}x/out", "ui": f"mlflow ui --backend-store-uri sqlite:///{ROOT}/mlflow.db",
             "inside": f"/x{ROOT}/y", "uri": f"file://{ROOT}/out"}  # fmt: skip
    assert relative_to_root(given) == {"log": "out/demo/x.tsv", "figures": ["out/f.png", "/elsewhere/g.png"],
                                       "n": 3, "name": f"{ROOT}x/out",
                                       "ui": "mlflow ui --backend-store-uri sqlite:///mlflow.db",
                                       "inside": f"/x{ROOT}/y", "uri": f"file://{ROOT}/out"}  # fmt: skip
