"""The labelled pairs that `train session` and `evaluate pairs` read, checked alike
before anything starts (`workflows.jobs.common.read_pairs_table`): a table with a
missing or blank text, a label that is not exactly 0 or 1, no rows, a missing column,
or a directory that is not a `mine` output is refused in one line naming the file,
the column, how many pairs and the first of them; exit 2, no Ray, no MLflow run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from sessions.io import read_table
from workflows.cli import app
from workflows.jobs.evaluate_pairs import read_pairs
from workflows.jobs.train_session import SessionTrainConfig, training_data

runner = CliRunner()
LOG = "".join(
    f"{u}\tquery {word} {u} {i}\t2006-03-01 0{i}:1{j}:00\t\t\n"
    for u in range(30)
    for i in range(6)
    for j, word in enumerate(["cat", "dog"])
)
MLMODEL = "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\nmetadata:\n  kind: session\n"
BAD_TEXTS = [None, "", " \t "]  # missing, empty, whitespace only
BAD_LABELS = [None, "yes", "", "0.5", 0.5, float("nan"), 2, -1]


def sessionflow(*args) -> tuple[int, list[str]]:
    result = runner.invoke(app, [*map(str, args)])
    return result.exit_code, result.output.strip().splitlines()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """A log and its ingest, segment and mine outputs (local engine)."""
    tmp = tmp_path_factory.mktemp("pairs-input")
    (tmp / "log.tsv").write_text(LOG)
    for args in (("ingest", tmp / "log.tsv", "-f", "aol", "-o", tmp / "events"),
                 ("segment", tmp / "log.tsv", "-f", "aol", "-o", tmp / "sessions"),
                 ("mine", tmp / "sessions", "-o", tmp / "pairs")):  # fmt: skip
        code, lines = sessionflow(*args, "--engine", "local")
        assert code == 0, lines
    (tmp / "model").mkdir()
    (tmp / "model" / "MLmodel").write_text(MLMODEL)  # a session model by its MLmodel alone: never loaded here
    return tmp


@pytest.fixture
def nothing_starts(monkeypatch, tmp_path):
    """Training, its MLflow run and the model's scoring replaced by failures: a refusal
    must come before any of them. The working directory and the MLflow store are the
    test's own, so anything written there shows."""
    import workflows.jobs.evaluate_pairs
    import workflows.jobs.train_session
    import workflows.tracking.store

    def started(*args, **kwargs):
        raise RuntimeError("started: the pairs were not refused first")

    monkeypatch.setattr(workflows.jobs.train_session, "train_best", started)
    monkeypatch.setattr(workflows.tracking.store, "training_run", started)
    monkeypatch.setattr(workflows.jobs.evaluate_pairs, "evaluate_pairs", started)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    yield
    import ray

    assert not ray.is_initialized()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "bad") == []


def train(pairs) -> tuple[int, list[str]]:
    return sessionflow("train", "session", "--pairs", pairs, "--model", "tiny", "--max-steps", "2", "--eval-every",
                       "2", "--batch-size", "8", "--max-val-pairs", "50")  # fmt: skip


def evaluate(outputs: Path, pairs) -> tuple[int, list[str]]:
    return sessionflow("evaluate", "pairs", "--model", outputs / "model", "--pairs", pairs)


COMMANDS = {"train session": lambda outputs, pairs: train(pairs), "evaluate pairs": evaluate}


def refused(outputs: Path, command: str, pairs, *says: str) -> None:
    """`command` on `pairs`: exit 2 and one line that says each of `says`."""
    code, lines = COMMANDS[command](outputs, pairs)
    assert code == 2 and len(lines) == 1, lines
    assert all(s in lines[0] for s in says), lines


def spoiled(outputs: Path, tmp_path: Path, column: str, value) -> tuple[Path, int]:
    """A copy of the `mine` output whose pairs hold `value` in `column` at one row of
    the train split (a label column turned into strings or floats to hold it), and
    that row's number (from 1)."""
    pairs = read_table(outputs / "pairs" / "pairs.parquet")
    row = int(pairs["split"].eq("train").arg_true()[3])
    if column == "label" and isinstance(value, str):
        pairs = pairs.with_columns(pl.col("label").cast(pl.String))
    elif column == "label" and isinstance(value, float):
        pairs = pairs.with_columns(pl.col("label").cast(pl.Float64))
    elif column == "label" and isinstance(value, int):
        pairs = pairs.with_columns(pl.col("label").cast(pl.Int64))
    values = pairs[column].to_list()
    values[row] = value
    pairs = pairs.with_columns(pl.Series(column, values, dtype=pairs[column].dtype, strict=False))
    (tmp_path / "bad").mkdir()
    pairs.write_parquet(tmp_path / "bad" / "pairs.parquet")
    return tmp_path / "bad", row + 1


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("column", "value"),
    [(c, v) for c in ("query_a", "query_b") for v in BAD_TEXTS] + [("label", v) for v in BAD_LABELS],
)
def test_a_bad_pair_is_refused_by_both_commands_in_one_line(outputs, tmp_path, nothing_starts, command, column,
                                                            value):  # fmt: skip
    """Any missing or blank text, any label but exactly 0 or 1, in any split (evaluate
    reads the test split, the bad pair is in train): one line naming the file, the
    column, one pair and its row. It was a Ray Train worker's TypeError retried for
    minutes, a cast's traceback, scikit-learn's "multiclass format", or an AUC."""
    bad, row = spoiled(outputs, tmp_path, column, value)
    what = f"no text in {column}" if column != "label" else "a label other than 0 or 1"
    shown = "null" if value is None else repr(value)
    refused(outputs, command, bad, f"{bad / 'pairs.parquet'}: 1 pair with {what} (first: row {row}, {shown})")


def test_every_query_a_empty_is_refused_with_the_count(outputs, tmp_path, nothing_starts):
    pairs = read_table(outputs / "pairs" / "pairs.parquet").with_columns(query_a=pl.lit(""))
    (tmp_path / "bad").mkdir()
    pairs.write_parquet(tmp_path / "bad" / "pairs.parquet")
    for command in COMMANDS:
        refused(
            outputs, command, tmp_path / "bad", f"{pairs.height:,} pairs with no text in query_a (first: row 1, '')"
        )


def test_a_csv_of_blank_texts_is_refused_and_nan_is_text(outputs, tmp_path, nothing_starts):
    """The tester's CSV: an empty query_b at row 1, an empty query_a at row 2 (query_a
    is checked first); "NaN" and "nan" are texts, and labels that are exactly 0 or 1
    as text are read as such."""
    csv = tmp_path / "bad" / "pairs.csv"
    csv.parent.mkdir()
    csv.write_text("query_a,query_b,label\ncats,,1\n,dogs,0\nNaN,nan,1\nbank,pizza,0\n")
    refused(outputs, "evaluate pairs", csv, f"{csv}: 1 pair with no text in query_a (first: row 2, '')")
    csv.write_text("query_a,query_b,label\ncats,kittens,1.0\nNaN,nan, 0\nbank,pizza,1\n")
    pairs, split = read_pairs(csv)
    assert split == "all" and pairs["label"].dtype == pl.Int8 and pairs["label"].to_list() == [1, 0, 1]
    assert pairs["query_a"].to_list() == ["cats", "NaN", "bank"] and pairs["query_b"][1] == "nan"
    tsv = csv.with_suffix(".tsv")  # tab-separated, commas in the texts (it was read as a CSV: no such columns)
    tsv.write_text("query_a\tquery_b\tlabel\ncats, cute\tkittens\t1\nbank\tpizza, hot\t0\n")
    pairs, _ = read_pairs(tsv)
    assert pairs["query_a"].to_list() == ["cats, cute", "bank"] and pairs["label"].to_list() == [1, 0]


def test_a_split_that_the_pairs_do_not_have_is_refused_naming_theirs(tmp_path):
    """The breaking helper's finds: `--split val` of a table without a split column
    scored every pair, saying "(all)"; a split the table lacks (its column says `TEST`)
    said "need positive and negative pairs". The default, test, reads a table without
    splits whole, as all does."""
    table = tmp_path / "pairs.csv"
    table.write_text("query_a,query_b,label\ncats,kittens,1\nbank,pizza,0\n")
    for split in ("test", None):
        assert read_pairs(table, split)[1] == "all"
    for split in ("train", "val"):
        with pytest.raises(ValueError, match=rf"pairs.csv: no split column, so no split {split}: --split all reads"):
            read_pairs(table, split)
    table.write_text("query_a,query_b,label,split\ncats,kittens,1,TEST\nbank,pizza,0,TEST\ncat,dog,0,val\n")
    with pytest.raises(ValueError, match=r"pairs.csv: no pairs in split test \(its splits: TEST, val\)"):
        read_pairs(table)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "an empty file (0 bytes), no pairs"),
        ("query_a,query_b,label\n", "no pairs (a table of 0 rows)"),
        ("query_a,query_b,label\ncats,dogs,yes\n", "1 pair with a label other than 0 or 1 (first: row 1, 'yes')"),
        ("query_a,query_b,label\ncats,dogs,1\nbank,pizza,0.5\n", "(first: row 2, '0.5')"),
        ("query_a,query_b,label\ncats,dogs,\n", "(first: row 1, '')"),
        # said in polars' words, naming no line
        (
            "query_a,query_b,label\ncats,dogs,1\nfoo,bar,1,extra\n",
            "not a CSV of pairs (line 3: 4 fields where the header has 3)",
        ),
        ('query_a,query_b,label\ncats,dogs,1\n"unclosed,x,1\n', "not a CSV of pairs (line 3: unexpected end of data)"),
        # a breaking helper's find: "missing column(s) query_a, query_b, label; this reads query_a, query_b, label"
        (
            "query_a\tquery_b\tlabel\ncats\tdogs\t1\n",
            "(its columns: 'query_a\\tquery_b\\tlabel': a tab-separated file (name it .tsv))",
        ),
        ("query_a, query_b, label\ncats, dogs, 1\n", "(its columns: 'query_a', ' query_b', ' label': spaces around"),
    ],
)
def test_an_empty_or_unlabelled_csv_is_refused_in_one_line(outputs, tmp_path, nothing_starts, content, says):
    csv = tmp_path / "bad" / "pairs.csv"
    csv.parent.mkdir()
    csv.write_text(content)
    refused(outputs, "evaluate pairs", csv, f"{csv}: ", says)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p: p.drop("label"), "missing column(s) label; this reads query_a, query_b, label, kind, user_id"),
        (lambda p: p.drop("split", "kind"), "missing column(s) kind, split"),
        (lambda p: p.head(0), "no pairs (a table of 0 rows)"),
        (
            lambda p: p.filter(pl.col("split") != "val"),
            "the val split holds no pairs: `mine` put none of the log's users there (--val-share of them, by a "
            "hash of user_id); mine a larger log or raise --val-share",
        ),
        (
            lambda p: p.filter((pl.col("split") != "val") | (pl.col("label") == 1)),
            "the val split's 60 pairs are all positive, and validation needs both; mine a larger log or raise "
            "--val-share",
        ),
        (
            lambda p: p.with_columns(split=pl.lit("test")),  # what `mine --gold` writes: the breaker's find
            "the train split holds no pairs (test 540): give pairs mined with a --train-share above 0 (`mine "
            "--gold` pairs are for `evaluate pairs`)",
        ),
        (
            lambda p: p.filter((pl.col("split") != "train") | (pl.col("label") == 1)),  # --negatives-per-positive 0
            "the train split's 230 pairs are all positive, and each training example needs a negative too: give "
            "pairs mined with --negatives-per-positive above 0 (test 10, train 230, val 80)",
        ),
        (
            lambda p: pl.concat(
                [
                    p.filter(pl.col("split") != "train"),
                    p.filter((pl.col("split") == "train") & (pl.col("label") == 1)).head(1),
                ]
            ),
            "the train split's 1 pair is positive, and each training example needs a negative too: give pairs mined "
            "with --negatives-per-positive above 0 (test 10, train 1, val 80)",  # it said "1 pairs are all"
        ),
    ],
    ids=[
        "no label",
        "no split, no kind",
        "no rows",
        "no val pairs",
        "val pairs of one label",
        "no train pairs",
        "train pairs of one label",
        "one train pair",
    ],
)
def test_train_refuses_pairs_without_its_columns_or_rows(outputs, tmp_path, nothing_starts, change, says):
    """Each refusal names what to change (a val split of one label said only "the val
    split needs positive and negative pairs")."""
    (tmp_path / "bad").mkdir()
    change(read_table(outputs / "pairs" / "pairs.parquet")).write_parquet(tmp_path / "bad" / "pairs.parquet")
    said = says if says.startswith("the ") else f"{tmp_path / 'bad' / 'pairs.parquet'}: {says}"  # a split's: no file
    refused(outputs, "train session", tmp_path / "bad", said)


def test_pairs_too_few_for_a_batch_and_for_a_validation_are_told_both_in_one_line(outputs, tmp_path, nothing_starts):
    """The breaker's find: a 15-row table's pairs were told to lower the batch size, and
    after that, that their val split held no pairs (raise the val share). Every check
    the pairs fail is said in the one line, the split's first."""
    (tmp_path / "bad").mkdir()
    mined = read_table(outputs / "pairs" / "pairs.parquet")
    mined.filter(pl.col("split") != "val").write_parquet(tmp_path / "bad" / "pairs.parquet")
    code, lines = sessionflow("train", "session", "--pairs", tmp_path / "bad", "--model", "tiny", "--batch-size",
                              "100000")  # fmt: skip
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: the val split holds no pairs: `mine` put none of the log's users there"), lines
    assert "raise --val-share; and 230 training examples: fewer than one global batch (100,000" in lines[0], lines
    assert lines[0].endswith("mine a larger log, or lower --batch-size or --workers"), lines


def test_a_validation_sample_of_one_label_is_refused_before_training(outputs, nothing_starts):
    """The breaker's find: --max-val-pairs 1 trained (val_auc nan), then failed at its
    calibration ("calibration needs positive and negative pairs", a FAILED run): both
    labels were checked in the whole val split, not in the sample taken of it."""
    val = read_table(outputs / "pairs" / "pairs.parquet").filter(pl.col("split") == "val")
    assert val["label"].n_unique() == 2  # the split holds both; a sample of one pair cannot
    code, lines = sessionflow("train", "session", "--pairs", outputs / "pairs", "--model", "tiny", "--batch-size",
                              "8", "--max-val-pairs", "1")  # fmt: skip
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: --max-val-pairs 1: its sample of the val split's {val.height:,} pairs is all ")
    assert lines[0].endswith(", and validation needs both; raise --max-val-pairs"), lines


@pytest.mark.parametrize("command", COMMANDS)
def test_what_is_not_a_mine_output_is_named(outputs, tmp_path, nothing_starts, command):
    """A `segment` output (it said "an unfinished output (no _manifest.json)"), an
    `ingest` output, a folder of CSVs: each named for what it is."""
    sessions, events = outputs / "sessions", outputs / "events"
    refused(outputs, command, sessions, f"{sessions}: a `segment` output (sessions), not a `mine` output (pairs); "
            f"give `mine`'s output of it (`sessionflow mine {sessions} -o DIR`)")  # fmt: skip
    refused(outputs, command, events, f"{events}: an `ingest` output (events), not a `mine` output (pairs)")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.csv").write_text("query_a,query_b,label\ncats,dogs,1\n")
    refused(outputs, command, tmp_path / "bad", f"{tmp_path / 'bad'}: not a `mine` output (no pairs.parquet here)")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unfinished_mine_output_is_refused(outputs, tmp_path, nothing_starts, command):
    """A `mine` output without its report (mine still running, failed or killed): `train
    session` trained on it and registered a model; now it is refused as `mine`, `segment`
    and `score` refuse an unfinished input."""
    import shutil

    shutil.copytree(outputs / "pairs", tmp_path / "bad")
    (tmp_path / "bad" / "report.json").unlink()
    refused(outputs, command, tmp_path / "bad", f"{tmp_path / 'bad'}: an unfinished output (no report.json")


@pytest.mark.parametrize("trainer", ["session", "hierarchy"])
def test_checkpoint_storage_that_cannot_be_written_is_refused_before_anything_starts(
    outputs, tmp_path, nothing_starts, trainer
):
    """`--storage` at an unknown scheme or under a file: each try was refused only after
    Ray had started, and left a FAILED MLflow run. The line names `--storage`, without
    the OS's `[Errno N]` (the unknown scheme's did not name it)."""
    (tmp_path / "bad").write_text("a file")
    job = ["--pairs", outputs / "pairs", "--model", "tiny"] if trainer == "session" else ["--model", "lookup"]
    for where in (tmp_path / "bad" / "ckpt", "foo://x/rr"):
        code, lines = sessionflow("train", trainer, *job, "--storage", where)
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: --storage {str(where)[:7]}"), lines
        assert "Errno" not in lines[0], lines
    for empty in ("", " "):  # taken as the current directory, where checkpoints landed
        code, lines = sessionflow("train", trainer, *job, "--storage", empty)
        assert code == 2 and lines == [f"error: --storage {empty!r}: empty; give a directory or a URI, or leave it "
                                       "out for Ray's default (~/ray_results)"], lines  # fmt: skip


def test_what_mine_writes_passes_unchanged(outputs):
    """The check refuses nothing of a `mine` output and changes none of its values."""
    from workflows.jobs.common import read_pairs_table
    from workflows.jobs.train_session import PAIRS_COLUMNS

    mined = read_table(outputs / "pairs" / "pairs.parquet")
    pairs, location = read_pairs_table(str(outputs / "pairs"), PAIRS_COLUMNS)
    assert location == str(outputs / "pairs" / "pairs.parquet") and pairs.equals(mined)
    train, val = training_data(str(outputs / "pairs"), SessionTrainConfig(batch_size=8, max_val_pairs=50))
    assert train.height and val.height and val["label"].dtype == pl.Int8


def test_the_same_pairs_in_another_row_order_give_the_same_training_data(outputs, tmp_path):
    """The code reader's find: the Ray engine's `mine` writes the pairs by bucket of users,
    the local one in their canonical order, and `train session`'s seeded sample of the
    validation pairs depended on the rows' order: the same pairs and seed gave another
    validation set (and checkpoint, calibration, champion) by engine."""
    from sessions.io import write_table

    mined = read_table(outputs / "pairs" / "pairs.parquet")
    shuffled = tmp_path / "shuffled.parquet"
    write_table(mined.sample(fraction=1.0, shuffle=True, seed=3), shuffled)
    cfg = SessionTrainConfig(batch_size=8, max_val_pairs=10)
    assert mined.filter(pl.col("split") == "val").height > cfg.max_val_pairs  # a sample is drawn
    for written, reordered in zip(training_data(str(outputs / "pairs"), cfg), training_data(str(shuffled), cfg),
                                  strict=True):  # fmt: skip
        assert written.equals(reordered)
    # which runs compete for champion: the validation pairs' content, not where they were read (a new user's
    # find: pairs mined again into the same directory, other users in val, were compared by that path)
    from workflows.jobs.train_session import pairs_digest

    val = training_data(str(outputs / "pairs"), cfg)[1]
    assert pairs_digest(val) == pairs_digest(training_data(str(shuffled), cfg)[1])
    # the sample is not --seed's (the breaker's find: runs differing only in their seed were never compared)
    assert training_data(str(shuffled), replace(cfg, seed=1))[1].equals(val)
    assert pairs_digest(val) == pairs_digest(training_data(str(outputs / "pairs"), replace(cfg, seed=7))[1])
    assert pairs_digest(val) != pairs_digest(val.with_columns(label=1 - pl.col("label")))


def test_mines_kinds_spelt_otherwise_are_mines(outputs, tmp_path):
    """Left alone at stop 74: a table of one's own naming `mine`'s hard kinds otherwise
    (`Same User`) had them drawn as random negatives without a word. They are read as
    `mine`'s (`mined_kind`), so the same training examples come of them, and
    `evaluate pairs` reports them under mine's name; other kinds stay as written."""
    from sessions.pairs import mined_kind

    mined = read_table(outputs / "pairs" / "pairs.parquet")
    assert mined.filter(pl.col("kind") == "lexical_hard").height  # this log's hard negatives
    cfg = SessionTrainConfig(batch_size=8, max_val_pairs=50)
    expected = training_data(str(outputs / "pairs"), cfg)
    for n, written in enumerate(["Lexical Hard", " lexical-hard", "LEXICAL_HARD "]):
        own = tmp_path / f"own{n}.csv"
        mined.with_columns(kind=pl.col("kind").replace("lexical_hard", written)).write_csv(own)
        for got, want in zip(training_data(str(own), cfg), expected, strict=True):
            assert got.equals(want)
        assert read_pairs(own, None)[0]["kind"].value_counts().sort("kind").equals(
            mined["kind"].value_counts().sort("kind"))  # fmt: skip
    other = tmp_path / "other.csv"
    mined.with_columns(kind=pl.col("kind").replace("lexical_hard", "Lexical  Hard?")).write_csv(other)
    assert "Lexical  Hard?" in read_pairs(other, None)[0]["kind"].to_list()
    spelt = pl.Series(["Same User", "same-user", " Random ", "Positive", "weird", None, "same_ user", "same__user"])
    assert pl.select(mined_kind(pl.lit(spelt))).to_series().to_list() == [
        "same_user", "same_user", "random", "positive", "weird", None, "same_user", "same_user"]  # fmt: skip


def test_the_mission_figure_takes_each_users_missions_as_theirs(outputs, tmp_path):
    """Left alone at stop 74: the validation users' missions drawn for the PCA figure
    (`mission_sample`) followed `--seed` and the order of an unordered `unique`, and
    took missions by id alone: a sessions table of one's own numbering each user's
    missions from 1 gave one mission of every user's first. Each user's missions are
    theirs, and the sample is the same whatever the ids' spelling and the rows' order."""
    from workflows.jobs.train_session import mission_sample

    def groups(sample: pl.DataFrame) -> set[frozenset[str]]:
        return {frozenset(g["query"]) for _, g in sample.group_by("mission_id")}

    segmented = read_table(outputs / "sessions" / "sessions.parquet")
    shipped = mission_sample(str(outputs / "pairs"))
    assert shipped is not None and shipped["mission_id"].n_unique() >= 2
    renumbered = segmented.with_columns(
        mission_id=pl.col("mission_id").rank("dense").over("user_id").cast(pl.String),
        session_id=pl.col("session_id").rank("dense").over("user_id").cast(pl.String),
    ).sample(fraction=1.0, shuffle=True, seed=5)
    assert renumbered.filter(pl.col("mission_id") == "1")["user_id"].n_unique() > 1
    renumbered.write_parquet(tmp_path / "own.parquet")
    code, lines = sessionflow("mine", tmp_path / "own.parquet", "-o", tmp_path / "pairs", "--engine", "local")
    assert code == 0, lines
    own = mission_sample(str(tmp_path / "pairs"))
    assert groups(own) == groups(shipped) and own.height == shipped.height
    assert mission_sample(str(tmp_path / "pairs")).equals(own)


def test_a_sessions_table_of_categories_is_mined_as_its_text(outputs, tmp_path):
    """A prompt-log breaker's find: a sessions table whose ids pandas held as `category`
    (a dictionary column) was refused ("user_id is Categorical"), where `ingest` reads
    such columns; its pairs are those of the same table as text."""
    segmented = read_table(outputs / "sessions" / "sessions.parquet")
    segmented.write_parquet(tmp_path / "text.parquet")
    texts = pl.col("user_id", "query", "session_id", "mission_id")
    segmented.with_columns(texts.cast(pl.Categorical)).write_parquet(tmp_path / "categories.parquet")
    for name in ("text", "categories"):
        code, lines = sessionflow("mine", tmp_path / f"{name}.parquet", "-o", tmp_path / f"p-{name}", "--engine",
                                  "local")  # fmt: skip
        assert code == 0, lines
    mined = [read_table(tmp_path / f"p-{name}" / "pairs.parquet") for name in ("text", "categories")]
    assert mined[0].height and mined[0].equals(mined[1])


def test_the_auc_against_each_kind_of_negative_ranks_the_positives_against_that_kind_alone():
    """`evaluate pairs` on pairs with kinds: which negatives a scorer cannot tell apart."""
    import numpy as np

    from workflows.jobs.evaluate_pairs import auc_by_negative_kind

    pairs = pl.DataFrame({"kind": ["positive", "positive", "random", "same_user", "same_user"]})
    scores, labels = np.array([0.9, 0.8, 0.1, 0.85, 0.2]), np.array([1, 1, 0, 0, 0])
    # against random: both positives above its one negative; against same_user: 0.9 > 0.85, 0.8 < 0.85, both > 0.2
    assert auc_by_negative_kind(scores, labels, pairs) == {"auc_vs_random": 1.0, "auc_vs_same_user": 0.75}
    assert auc_by_negative_kind(scores, labels, pairs.rename({"kind": "other"})) == {}
    # the breaker's finds: a blank or missing kind is no kind (a CSV keeps blanks as "")
    blank = pairs.with_columns(kind=pl.Series(["", None, "random", " ", None]))
    assert auc_by_negative_kind(scores, labels, blank) == {"auc_vs_random": 1.0}
    padded = pairs.with_columns(kind=pl.Series(["positive", "positive", "random", "same_user ", " same_user"]))
    assert auc_by_negative_kind(scores, labels, padded) == {"auc_vs_random": 1.0, "auc_vs_same_user": 0.75}


def test_kinds_are_read_from_a_text_column_and_shown_as_written(tmp_path, monkeypatch):
    """The breaker's finds: a numeric `kind` column gave "AUC vs nan"; a kind named `[/]`
    broke the table (read as Rich markup)."""
    import numpy as np

    import workflows.jobs.evaluate_pairs as evaluate_pairs

    numeric = tmp_path / "numeric.parquet"
    pl.DataFrame({"query_a": ["a", "b"], "query_b": ["c", "d"], "label": [1, 0], "kind": [None, 2.0]}).write_parquet(
        numeric
    )
    assert "kind" not in read_pairs(numeric, None)[0].columns
    odd = tmp_path / "odd.csv"
    odd.write_text("query_a,query_b,label,kind\na,c,1,positive\nb,d,0,[/]\ne,f,0,[bold]x\n")
    assert read_pairs(odd, None)[0]["kind"].to_list() == ["positive", "[/]", "[bold]x"]

    def scored(model_uri, pairs, baseline=None):
        s, labels = np.array([0.9, 0.1, 0.2]), pairs["label"].to_numpy()
        metrics = {"session model": {"auc": 1.0, "accuracy": 1.0, "pairs": 3, "positives": 1, "threshold": 0.5,
                                     **evaluate_pairs.auc_by_negative_kind(s, labels, pairs)}}  # fmt: skip
        scored_pairs = pairs.with_columns(p_same=pl.Series(s), unread=False)  # every pair read
        return evaluate_pairs.PairEvaluation(scored_pairs, {"session model": s}, metrics)

    monkeypatch.setattr(evaluate_pairs, "evaluate_pairs", scored)
    monkeypatch.setattr("workflows.tracking.store.require_model", lambda uri, kinds: None)
    shown = CliRunner().invoke(app, ["evaluate", "pairs", "--model", "m", "--pairs", str(odd), "--examples", "0"])
    assert shown.exit_code == 0, shown.output
    assert "AUC vs [/]" in shown.output and "AUC vs [bold]x" in shown.output
