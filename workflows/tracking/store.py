"""MLflow: where runs go, and the registry's `champion` alias.

The tracking URI (`workflows.tracking.uri.tracking_uri`) is MLFLOW_TRACKING_URI, else
a SQLite store `mlflow.db` in the working directory (so `mlflow ui` in that directory
shows every run), made absolute before it is handed to Ray workers, whose working
directory may differ.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.tracking import MlflowClient

from sessions.formats.columnar import decimal_text, float_text
from sessions.io import process_running, this_process
from sessions.provenance import provenance
from sessions.storage import first_line
from workflows.errors import signals_noted, stops_deferred
from workflows.reach import unanswered
from workflows.tracking.uri import NOTES, tracking_uri

CHAMPION = "champion"
PROCESS_TAG = "sessionflow.process"  # the job's process, `sessions.io.this_process` (`end_abandoned_runs`)
ENDED_TAG = "sessionflow.ended"  # why a run ended that its job did not end
# Requirements of the logged pyfunc models, pinned to what is installed (MLflow's own
# inference would drop the local `+cpu` tag of torch and ask for another build).
REQUIREMENTS = ("torch", "transformers", "numpy", "pandas", "scikit-learn", "geoopt", "mlflow")

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
for _name in ("mlflow.store.db.utils", "alembic.runtime.migration", "mlflow.tracking.fluent"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # "Creating initial MLflow database tables...", "Creating..."


class _Routine(logging.Filter):
    """Drops MLflow's notes on what every model logged here does by design (a python
    model pickled with cloudpickle, its input example checked): said once in the docs,
    not at every run. Its other warnings (dependency mismatches on load) pass."""

    ROUTINE = ("Passing a Python object as `python_model`", "Validating input example against model signature")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.ROUTINE)


logging.getLogger("mlflow.pyfunc").addFilter(_Routine())


def use_store(existing: bool = False, writes: str | None = None) -> MlflowClient:
    """Point mlflow at the project's store; a client for it. Warns (once) when the
    store is a SQLite file in the temporary working directory of a `ray job submit`.

    `existing`: the caller only reads (models, runs): ValueError in one line, creating
    nothing, when the store is a SQLite file that is not there (a client would create
    an empty one). ValueError also for a file store (a path or file://), which MLflow 3
    refuses unless MLFLOW_ALLOW_FILE_STORE is set.

    A SQLite store is checked for writing (`check_writable_store`) unless `existing`, or
    where an `existing` store's caller still `writes` to it (what, for the message:
    `promote` moves the champion alias in it)."""
    uri = tracking_uri()
    file_store = "://" not in uri or uri.startswith("file:")
    if file_store and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
        raise ValueError(f"MLFLOW_TRACKING_URI={uri} is a file store, which MLflow 3 no longer serves: give "
                         "sqlite:///PATH/mlflow.db or an http(s):// tracking server")  # fmt: skip
    if existing and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise ValueError(
            f"no MLflow store at {uri.removeprefix('sqlite:///')}: run this where the models were trained "
            "(their mlflow.db), or set MLFLOW_TRACKING_URI to their store"
        )
    if (writes or not existing) and uri.startswith("sqlite:///"):
        check_writable_store(Path(uri.removeprefix("sqlite:///")), writes or "logs runs and models to it")
    warn_if_ephemeral(uri)
    if uri not in _opened:
        _open(uri)
        _opened.add(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri)


_opened: set[str] = set()


def check_writable_store(db: Path, does: str) -> None:
    """ValueError in one line when a SQLite store that a job would write to cannot be
    written: the file, or the directory SQLite keeps its journal in, read-only (a
    read-only mount, permissions). Before, `train session` failed at its first write
    with five tracebacks of `attempt to write a readonly database`, and `promote` with
    SQLAlchemy's. `does`: what the command writes, for the message."""
    where = db if db.exists() else db.parent
    if where.exists() and not (os.access(where, os.W_OK) and os.access(db.parent, os.W_OK)):
        raise ValueError(
            f"the MLflow store {db} cannot be written here (read-only): this command {does}; "
            "set MLFLOW_TRACKING_URI to a store it may write"
        )


def check_store() -> None:
    """`use_store`'s checks of the store a job will log to, made before the job's first
    step, creating nothing: a SQLite store that is not there yet is made by the job's
    first run (`use_store`), so a job that fails before it (`sessionflow demo` on a log
    too small to evaluate) leaves no empty mlflow.db behind. ValueError in one line."""
    uri = tracking_uri()
    path = uri.removeprefix("sqlite:///")
    if not uri.startswith("sqlite:///") or Path(path).exists():
        use_store()
        return
    check_writable_store(Path(path), "logs runs and models to it")
    _check_sqlite_path(path)
    _probe_new_store(Path(path))


def _probe_new_store(db: Path) -> None:
    """ValueError in one line when no file can be made where the SQLite store `db` would
    be (a directory that cannot be made or written, whatever its permission bits say):
    tried with a probe file, and the directories made for it removed again."""
    db = Path(os.path.realpath(db))  # where SQLite makes it: through a link
    made, here = [], db.parent
    while not here.exists():
        made.append(here)
        here = here.parent
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=db.parent, prefix=".sessionflow-probe-"):
            pass
    except OSError as err:
        where = db.parent if ".sessionflow-probe-" in str(err.filename) else err.filename  # the probe is not theirs
        raise ValueError(f"{db}: no MLflow store can be made there ({err.strerror}: {where})") from None
    finally:
        for directory in made:  # deepest first
            with suppress(OSError):
                directory.rmdir()


def _other_database(path: str) -> bool:
    """Whether `path` is a SQLite database holding tables, none of them MLflow's (its
    `alembic_version` and `experiments`). A file that is no database is left for MLflow
    to name; an empty file or none is a new store."""
    import sqlite3

    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        return False
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return False
    return bool(tables) and not {"alembic_version", "experiments"} & tables


def _check_sqlite_path(path: str) -> None:
    """ValueError when no SQLite store can be at `path`: a directory is there, or a file
    stands where one of its parent directories would be."""
    if Path(path).is_dir():  # MLflow retried opening it for about 110 s
        raise ValueError(f"{path} is a directory, not an MLflow store: give sqlite:///{Path(path, 'mlflow.db')}")
    if blocking := next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None):
        raise ValueError(f"{path}: no MLflow store can be made there: {blocking} is a file, not a directory")


def _open(uri: str) -> None:
    """Reach the store once a process, so that what is wrong with it is said here in one
    line (ValueError), before a job starts: an http(s) server that does not answer
    (MLflow's client retries for minutes), a file that is not an MLflow database.

    A new SQLite store is created under a lock that every sessionflow process takes: MLflow
    3 creates a store's tables for its tracking and its registry side separately, the
    registry's without a lock, and two jobs started together on a new store both ran
    the schema's migrations and left it half-migrated for good."""
    if uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        why = unanswered([parts.hostname or ""], parts.port or (443 if parts.scheme == "https" else 80))
        if why:
            from workflows.submitted import submitted_working_dir

            # a submitted job's ./mlflow.db is in the working directory Ray deletes with the job: not offered there
            local = "" if submitted_working_dir() else ", or unset MLFLOW_TRACKING_URI for ./mlflow.db"
            raise ValueError(f"no MLflow tracking server answers at {uri} (MLFLOW_TRACKING_URI: {why}); start it "
                             f"(`mlflow server --workers 1`){local}")  # fmt: skip
        return
    if not uri.startswith("sqlite:///"):
        from mlflow.exceptions import MlflowException

        try:  # the client picks a store by the URI's scheme: one MLflow has none for fails here
            MlflowClient(uri, registry_uri=uri)
        except MlflowException:
            raise ValueError(f"MLFLOW_TRACKING_URI={uri}: MLflow keeps no store at such a URI; give sqlite:///"
                             "PATH/mlflow.db, an http(s):// tracking server or a database's URI") from None  # fmt: skip
        except ImportError as err:  # a database whose driver is not installed (psycopg, MySQLdb, pyodbc)
            raise ValueError(f"MLFLOW_TRACKING_URI={uri}: the database driver it needs is not installed "
                             f"({err}); install it, or use sqlite:///PATH/mlflow.db") from None  # fmt: skip
        return
    import fcntl
    import hashlib

    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    path = uri.removeprefix("sqlite:///")
    _check_sqlite_path(path)
    if _other_database(path):  # MLflow would add its ~70 tables to it, even for a command that only reads
        raise ValueError(f"{path}: a SQLite database of other tables, not an MLflow store; set "
                         "MLFLOW_TRACKING_URI to a store of its own")  # fmt: skip
    key = hashlib.md5(path.encode(), usedforsecurity=False).hexdigest()
    with open(Path(tempfile.gettempdir()) / f"sessionflow-store-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        try:  # the client creates the tracking side's tables, a search the registry's
            # SQLite makes no directory: a store in one that is not there (a link's target's) was retried for
            # minutes
            Path(os.path.realpath(path)).parent.mkdir(parents=True, exist_ok=True)
            MlflowClient(uri, registry_uri=uri).search_registered_models(max_results=1)
        except (MlflowException, SQLAlchemyError) as err:
            reason = str(getattr(err, "orig", None) or _first(err)).splitlines()[0]
            raise ValueError(f"{path}: not an MLflow store this can open ({reason})") from None
        except OSError as err:  # its directory cannot be made: permissions, a read-only disk
            raise ValueError(f"{path}: no MLflow store can be made there ({err.strerror}: {err.filename})") from None


_warned: set[str] = set()


def warn_if_ephemeral(uri: str) -> None:
    """A warning on stderr when `uri` is a SQLite file inside the working directory that
    `ray job submit --working-dir` unpacked for this job: that copy lives on the head
    node only and is deleted with the job, and with it the runs and registered models."""
    from workflows.submitted import in_submitted_working_dir

    if not uri.startswith("sqlite:///") or uri in _warned:
        return
    import logging

    if in_submitted_working_dir(uri.removeprefix("sqlite:///")):
        _warned.add(uri)
        logging.getLogger("sessionflow").warning(
            "warning: MLflow store %s is in this job's temporary working directory; its runs and models are "
            "deleted with the job. Run `mlflow server` on the head node and submit with "
            '--runtime-env-json \'{"env_vars": {"MLFLOW_TRACKING_URI": "http://HEAD:5000"}}\'',
            uri,
        )


@contextmanager
def training_run(
    experiment: str, job: str, params: Mapping[str, Any], run_name: str | None = None, description: str = ""
) -> Iterator[str]:
    """An MLflow run of `experiment` named `run_name`, described by `description`, with
    `params` logged and `provenance` tags, active in the driver; yields its id. The
    experiment gets its description (`NOTES`) when it has none.

    The run ends FINISHED, or FAILED when the block raises (a stop too: SIGTERM, Ctrl-C),
    and then the versions `register` made of it inside the block are deleted first (the
    champion alias back where it was): a job that failed or was stopped after registering
    leaves no version of a failed run that `evaluate` would score and `promote` take. The
    failed run is ended with stops held off (`workflows.errors.stops_deferred`), once the
    writes a stop broke off are let go (`_release_broken_writes`): a SIGTERM inside a
    registry call's commit left that transaction's lock on the SQLite store, MLflow's
    ending of the run waited its 20 s for it and failed with `database is locked`, and
    the run stayed RUNNING (the breaker's find).
    """
    use_store()
    found = mlflow.set_experiment(experiment)
    if experiment in NOTES and "mlflow.note.content" not in (found.tags or {}):
        try:
            mlflow.set_experiment_tag("mlflow.note.content", NOTES[experiment])
        except mlflow.exceptions.MlflowException:  # another job described it at the same moment (the insert raced)
            if "mlflow.note.content" not in (mlflow.get_experiment(found.experiment_id).tags or {}):
                raise
    end_abandoned_runs(MlflowClient(), [found.experiment_id])
    tags = {"sessionflow.job": job, PROCESS_TAG: json.dumps(this_process()), **provenance(),
            **({"mlflow.note.content": description} if description else {})}  # fmt: skip
    registered: list[_Registration] = []
    _registering.append(registered)
    try:
        with mlflow.start_run(run_name=run_name, tags=tags) as run:
            try:
                mlflow.log_params(dict(params))
                yield run.info.run_id
            except BaseException:
                with stops_deferred():  # a stop more is raised once the run has ended
                    _release_broken_writes()
                    for registration in reversed(registered):
                        _unregister(MlflowClient(), registration)
                    mlflow.end_run("FAILED")
                raise
    finally:
        _registering.remove(registered)


@dataclass
class _Registration:
    """What undoing one `register` takes: the model's `name`, the `run` whose versions of
    it are undone (None: only `version`), those versions of it already there before
    (`kept`), the version made when known, the champion before (`champion`), and whether
    the registered model itself was made then (`made`)."""

    name: str
    run: str | None
    kept: frozenset[str]
    champion: str | None
    made: bool
    version: str | None = None


_registering: list[list[_Registration]] = []  # for each open `training_run`, what `register` made in it


def _release_broken_writes() -> None:
    """Let go of the SQLite transactions a stop (a KeyboardInterrupt raised inside a
    commit) left open in MLflow's pooled connections: its stores' engines give up their
    pools, which rolls those back and frees the database's lock, which every later write
    of this process (the failed run's end, the undoing of a registration) otherwise
    waited 20 s for and failed with `database is locked`."""
    for module in ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store"):
        store = getattr(sys.modules.get(module), "SqlAlchemyStore", None)
        for engine in list(getattr(store, "_engine_map", {}).values()):
            engine.dispose()


def end_abandoned_runs(client: MlflowClient, experiment_ids: Sequence[str]) -> list[str]:
    """Mark KILLED the RUNNING runs of `experiment_ids` whose job's process is gone (`kill
    -9`: a process killed so ends no run, which stayed RUNNING in the UI and in `compare`
    for ever), and tag them `ENDED_TAG`; returns their ids. A run's process is the
    `PROCESS_TAG` `training_run` writes (`sessions.io.this_process`). Runs whose process
    this one cannot see (another host, PID namespace or boot: `process_running`), and
    runs without the tag, are left as they are."""
    ended = []
    for run in client.search_runs(list(experiment_ids), "attributes.status = 'RUNNING'", max_results=1000):
        try:
            running = process_running(json.loads(run.data.tags[PROCESS_TAG]))
        except (KeyError, ValueError, TypeError, RecursionError):  # no tag, or a garbled one
            continue
        if not running:
            client.set_tag(run.info.run_id, ENDED_TAG, "its process ended without ending the run (killed)")
            client.set_terminated(run.info.run_id, "KILLED")
            ended.append(run.info.run_id)
    return ended


def log_table(frame: Any, source: str, name: str, context: str) -> None:
    """Log a table the run read as an MLflow dataset input (`mlflow.log_input`: its
    source, schema, row count and digest): `frame` a polars or pandas DataFrame."""
    import warnings

    import mlflow.data

    pandas = frame.to_pandas() if hasattr(frame, "to_pandas") else frame
    with warnings.catch_warnings():  # a path source "can be interpreted in multiple ways"; integer columns' hint
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_input(mlflow.data.from_pandas(pandas, source=source, name=name), context=context)


def text_type() -> Any:
    """The type of a text column in this project's model signatures: MLflow's `AnyType`,
    the cells read by `text_cells`. Not MLflow's string: a served model (`mlflow models
    serve`) parses the `inputs` JSON by it with numpy's str, and a null arrived as the text
    "None", scored as that query; a pyfunc cannot tell it from a query "None"."""
    from mlflow.types.schema import AnyType

    return AnyType()


def text_cells(column: pd.Series) -> list[str | None]:
    """A pyfunc input's text column, one `str` or None a cell, by one rule for every model
    of this project (`text_of`). ValueError in one line, naming the column and the row, for
    a cell that holds no text. A float column (integers with a missing value, as pandas
    holds them: JSON's `[911, null]`, served, arrives so) is read at once, by `text_of`'s
    rule for floats."""
    if pd.api.types.is_float_dtype(column.dtype):
        values = pl.Series("v", column.to_numpy(dtype=np.float64, na_value=np.nan))
        return values.to_frame().select(float_text(pl.col("v"))).to_series().to_list()
    return [text_of(value, column.name, row) for row, value in enumerate(column)]


def text_of(value: object, column: object, row: int) -> str | None:
    """One cell of a pyfunc input's text column (`column`, row `row`, for the message) as a
    text, by the rule `ingest` reads a typed table's values by (JSON lines, Parquet: README,
    "Reading logs", the `table` format), so that a model reads a log's values as `segment` does:

    - a `str` (numpy's `str_` too): that text;
    - bytes, a `bytearray`, numpy's `bytes_` or a `memoryview` of bytes: decoded as UTF-8;
    - an integer (Python's or numpy's, not a bool): its digits (AOL's AnonID, read by
      pandas as int64; a query such as 911);
    - a float (numpy's too): a whole one below 2**53 its integer (599381.0 is the user
      599381: pandas writes an integer column with a missing value as floats), another as
      polars writes it (1.5); `sessions.formats.columnar.float_text`;
    - a Decimal: its number (599381.00 is 599381, 1.50 is 1.5; `decimal_text`);
    - a bool: its word (`true`, `false`);
    - missing (`is_missing`: None, NaN, pandas' NA, NaT): None.

    ValueError in one line for anything else, never its printed form (which was scored as
    a text, "<memory at 0x...>", "<generator object ...>"): a fraction or complex number,
    a datetime, a cell of many values (a list, tuple, array, Series, set, mapping or
    iterator: one text a row, `rows_of` reads a dict of lists), any other object; and
    bytes that are no UTF-8.
    """
    if isinstance(value, str):
        return str.__str__(value)  # a plain str of a subclass's text (numpy's str_)
    if isinstance(value, memoryview) and value.itemsize == 1:
        value = value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{column}: row {row} holds bytes that are no UTF-8 ({err.reason} at byte "
                             f"{err.start}); give texts") from None  # fmt: skip
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    # a timedelta64 is no number to a reader, though numpy registers it as an integer
    number = isinstance(value, numbers.Number) and not isinstance(value, np.timedelta64)
    if number and isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return pl.select(float_text(pl.lit(float(value), dtype=pl.Float64))).item()
    if isinstance(value, Decimal) and value.is_finite():  # its digits as written (`f`: no exponent), trimmed
        return pl.select(decimal_text(pl.lit(format(value, "f"), dtype=pl.String))).item()
    if number:  # a Fraction, a complex number, an infinite Decimal
        raise ValueError(f"{column}: row {row} holds {_kind(value)} ({value}), not a text; give texts or numbers")
    many = isinstance(value, Iterable) and not isinstance(value, memoryview)
    advice = "give one text a row" if many else "give texts"
    raise ValueError(f"{column}: row {row} holds {_kind(value)}, not a text; {advice}")


def _kind(value: object) -> str:
    """What a cell that is no text holds, as `text_of`'s message names it: "a list", "a Timestamp"."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, AbstractSet):
        return "a set"
    if isinstance(value, Iterator):
        return "an iterator"  # a generator, `map`, `iter(...)`
    if isinstance(value, memoryview):
        return f"a memoryview of {value.itemsize}-byte items"
    names = {list: "list", tuple: "tuple", np.ndarray: "array", pd.Series: "pandas Series"}
    name = next((n for kind, n in names.items() if isinstance(value, kind)), type(value).__name__)
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def is_missing(value: object) -> bool:
    """Whether a pyfunc input's cell holds no value: None, a float NaN (numpy's float32 too),
    pandas' NA (a `string` column's missing value, which `str` writes as the text "<NA>")
    or NaT (pandas' or numpy's)."""
    return (value is None or value is pd.NA or value is pd.NaT
            or (isinstance(value, (float, np.floating)) and math.isnan(value))
            or (isinstance(value, (np.datetime64, np.timedelta64)) and bool(np.isnat(value))))  # fmt: skip


def _listed(value: object) -> bool:
    """Whether a one-row input's cell is a column of values (`rows_of`): a list, a tuple
    or an array of one or more dimensions."""
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0)


def rows_of(model_input: pd.DataFrame) -> pd.DataFrame:
    """A pyfunc's input with one value a cell: (n, columns), as every model of this project
    reads it.

    MLflow hands a dict of lists (`model.predict({"query_a": [...], "query_b": [...]})`,
    as serving's `inputs` JSON gives it too) to the model as one row whose cells are the
    lists (or tuples, or arrays); pandas reads the same dict as one row a value, and so
    does this: each list becomes a column. ValueError in one line when the lists differ
    in length. A cell of one value is then read by `text_cells`.
    """
    if len(model_input) != 1 or not any(_listed(v) for v in model_input.iloc[0]):
        return model_input
    cells = model_input.iloc[0]
    lengths = {len(v) for v in cells if _listed(v)}
    if len(lengths) > 1 or not all(_listed(v) or is_missing(v) for v in cells):
        raise ValueError(
            "give each column one value a row, or every column as a list of one length; got lists of "
            f"{', '.join(str(len(v)) if _listed(v) else '1' for v in cells)} values"
        )
    (n,) = lengths
    return pd.DataFrame({c: list(v) if _listed(v) else [None] * n for c, v in cells.items()})


def pip_requirements(names: Sequence[str] = REQUIREMENTS) -> list[str]:
    """`name==version` of the packages a logged model needs (`names`, as installed), local version tags removed."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


@dataclass(frozen=True)
class Promotion:
    """Whether a registered version took the champion alias (true as a bool when it did),
    and when not, why, in words: the champion kept it on a better metric, or was trained
    on other data and is not compared."""

    took: bool
    why: str = ""

    def __bool__(self) -> bool:
        return self.took


def promote_if_best(
    client: MlflowClient, name: str, version: str, metric: str, same: tuple[str, ...] = ()
) -> Promotion:
    """Give `version` the champion alias when its run's `metric` beats the champion's
    (or there is none); true when it did. Runs whose params `same` differ from the
    champion's (other data, say) are not comparable: the alias stays, and the
    `Promotion` says which param differs."""
    mine = _metric_of(client, name, version, metric)
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        current = None
    if current is not None and str(current.version) != str(version):
        champion = f"the champion, version {current.version},"
        for param in same:
            theirs_param, mine_param = (_param_of(client, name, v, param) for v in (current.version, version))
            if theirs_param != mine_param:
                with_it = f"was trained with {param} {theirs_param}" if theirs_param is not None else (
                    f"records no {param} (a run of an earlier version of sessionflow)")  # fmt: skip
                return Promotion(False, f"{champion} {with_it} (this one {mine_param}), so the two are not "
                                        "compared")  # fmt: skip
        theirs = _metric_of(client, name, current.version, metric)
        if not math.isnan(theirs) and not mine > theirs:
            return Promotion(False, f"{champion} has {metric} {theirs:.4f}, this one {mine:.4f}")
    client.set_registered_model_alias(name, CHAMPION, version)
    return Promotion(True)


def register(
    model_uri: str, name: str, metric: str, same: tuple[str, ...] = (), description: str = ""
) -> tuple[str, Promotion]:
    """Register `model_uri` as a new version of `name` described by `description` (what it
    was trained on, its headline metrics; how to load it is added) and tagged with its
    run's `metric`: (`models:/NAME/VERSION`, whether it took the champion alias and why
    not: `promote_if_best`). The registered model gets its description (`NOTES`) when it has none.

    One unit: a stop (SIGTERM, Ctrl-C) is held off until its steps are done (the version
    made, described, tagged, the alias moved), and then, like any exception raised by
    one of them, undoes them before it is raised: the version made is deleted (also one
    whose number the stop left unsaid: the model's run's new versions), the champion
    alias put back, a registered model made here deleted. Before, a SIGTERM as
    `Created version` was printed left that version registered, undescribed and
    untagged, of a run that then failed, and `promote` took it (the breaker's find).
    Inside a `training_run`, a failure after this returns undoes it too."""
    client = use_store()
    with stops_deferred():  # a stop is raised on leaving, once what it stopped is undone
        noted = signals_noted()
        undo = _registration(client, model_uri, name)
        try:
            version = undo.version = str(mlflow.register_model(model_uri, name).version)
            if name in NOTES and not client.get_registered_model(name).description:
                client.update_registered_model(name, description=NOTES[name])
            load = f'Load: mlflow.pyfunc.load_model("models:/{name}/{version}")'
            client.update_model_version(name, version, description=f"{description} {load}".strip())
            value = _metric_of(client, name, version, metric)
            if not math.isnan(value):
                client.set_model_version_tag(name, version, metric, f"{value:.4f}")
            promotion = promote_if_best(client, name, version, metric, same)
        except BaseException:
            _release_broken_writes()
            _unregister(client, undo)
            raise
        if signals_noted() > noted:  # stopped: nothing stays registered
            _unregister(client, undo)
        elif _registering:
            _registering[-1].append(undo)
    return f"models:/{name}/{version}", promotion


def _registration(client: MlflowClient, model_uri: str, name: str) -> _Registration:
    """What undoing a registration of `model_uri` as a version of `name` will take, read
    before it is made (`_Registration`)."""
    from mlflow.exceptions import MlflowException

    try:
        run = run_of(model_uri) if model_uri.startswith(("models:/m-", "runs:/")) else None
    except ValueError:
        run = None
    try:
        client.get_registered_model(name)
    except MlflowException:
        return _Registration(name, run, frozenset(), None, made=True)
    try:
        champion = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        champion = None
    return _Registration(name, run, frozenset(_versions_of(client, name, run)), champion, made=False)


def _versions_of(client: MlflowClient, name: str, run: str | None) -> list[str]:
    """The versions of `name` registered from `run` (none for no run)."""
    if run is None:
        return []
    return [str(v.version) for v in client.search_model_versions(f"name='{name}' and run_id='{run}'")]


def _unregister(client: MlflowClient, undo: _Registration) -> None:
    """Undo a registration (`_Registration`): delete the version it made, and any other
    version of its run made since, put the champion alias back on the version that held
    it (where the alias went with a deleted version), and delete the registered model
    when it was made then and holds no version now. What cannot be undone (the store
    gone) is said in a warning, naming the version to delete by hand."""
    from mlflow.exceptions import MlflowException

    try:
        made = set(_versions_of(client, undo.name, undo.run)) - undo.kept | ({undo.version} - {None})
        for version in sorted(made, key=int):
            with suppress(MlflowException):  # a version the stop kept from being made
                client.delete_model_version(undo.name, version)
        if undo.champion is not None and undo.champion not in made:
            try:
                client.get_model_version_by_alias(undo.name, CHAMPION)
            except MlflowException:  # it went with a deleted version
                client.set_registered_model_alias(undo.name, CHAMPION, undo.champion)
        if undo.made and not client.search_model_versions(f"name='{undo.name}'"):
            client.delete_registered_model(undo.name)
    except MlflowException as err:
        logging.getLogger("sessionflow").warning(
            "warning: a registration of %s that failed could not be undone (%s): delete its version %s "
            "(`mlflow` or the UI)", undo.name, _first(err), undo.version or "made last",
        )  # fmt: skip


def require_finished(client: MlflowClient, name: str, version: str) -> None:
    """ValueError in one line when the run of `version` of `name` did not finish (FAILED,
    KILLED, still RUNNING): a stopped job's version was made champion (the breaker's
    find). A version without a run of its own, or whose run this store does not hold,
    passes; MlflowException when there is no such version."""
    from mlflow.exceptions import MlflowException

    found = client.get_model_version(name, version)
    try:
        status = client.get_run(found.run_id).info.status if found.run_id else "FINISHED"
    except MlflowException:
        status = "FINISHED"
    if status != "FINISHED":
        did = "is still RUNNING" if status == "RUNNING" else f"ended {status}"
        raise ValueError(f"{name} version {version}: its run {found.run_id} {did}, not FINISHED: the model of a "
                         "job that did not finish is not made the champion")  # fmt: skip


def _metric_of(client: MlflowClient, name: str, version: str, metric: str) -> float:
    run_id = client.get_model_version(name, version).run_id
    value = client.get_run(run_id).data.metrics.get(metric) if run_id else None
    return float("nan") if value is None else float(value)


def _param_of(client: MlflowClient, name: str, version: str, param: str) -> str | None:
    run_id = client.get_model_version(name, version).run_id
    return client.get_run(run_id).data.params.get(param) if run_id else None


_RUN_ID = re.compile(r"[0-9a-f]{32}")  # MLflow's run ids


def pinned(uri: str) -> str:
    """What a model URI stands for now, for a report that must name the model after an
    alias has moved: `URI -> run RUN_ID` (`run_of`: `models:/session-model@champion ->
    run 3f2...`); a model directory (its `MLmodel` there) as given. ValueError as
    `run_of`'s."""
    if Path(uri, "MLmodel").exists():
        return uri
    return f"{uri} -> run {run_of(uri)}"


def run_of(uri: str) -> str:
    """The MLflow run that logged the model at `uri` (or `uri` itself, a run id); for a
    registered version made of another version (`mlflow.register_model("models:/a/1",
    "b")`, which has no run of its own), the run of the model it was made of. ValueError
    when the store has no such model, version, alias or run, or `uri` is a path (a model
    directory has no run here)."""
    from mlflow.exceptions import MlflowException

    if not uri.startswith(("models:/", "runs:/")) and not _RUN_ID.fullmatch(uri):  # a path
        what = "a model directory, not a run's" if Path(uri, "MLmodel").exists() else _no_model_there(uri)
        raise ValueError(f"{uri}: {what}; give models:/NAME@ALIAS, runs:/RUN_ID/model or a run id")
    client = use_store(existing=True)
    try:
        if uri.startswith("models:/m-"):  # a logged model (MLflow 3)
            return mlflow.get_logged_model(uri.removeprefix("models:/")).source_run_id
        if uri.startswith("models:/"):
            name, _, ref = uri.removeprefix("models:/").partition("@")
            if ref:
                return _run_of_version(client.get_model_version_by_alias(name, ref), uri)
            name, _, version = uri.removeprefix("models:/").rpartition("/")
            if not name:
                raise ValueError(f"{uri}: no version or alias; give models:/{version}/VERSION or "
                                 f"models:/{version}@ALIAS ({registered(client, uri)})")  # fmt: skip
            if version.lower() == "latest":  # MLflow's word for a model's newest version
                versions = client.search_model_versions(f"name='{name}'")
                version = str(max((int(v.version) for v in versions), default=0)) if versions else "latest"
            return _run_of_version(client.get_model_version(name, version), uri)
        run_id = uri.removeprefix("runs:/").split("/")[0]
        return client.get_run(run_id).info.run_id
    except MlflowException as err:
        registry = uri.startswith("models:/") and not uri.startswith("models:/m-")
        known = f"; {registered(client, uri)}" if registry else ""
        reason = err.message.splitlines()[0].rstrip(".")
        raise ValueError(f"{uri}: {reason}{known} (tracking store: {tracking_uri()})") from None


def _run_of_version(version: Any, uri: str) -> str:
    """The run of a registered model version, or of the model its `source` names when it
    has none of its own (a version registered from another version or logged model)."""
    if version.run_id:
        return version.run_id
    source = str(version.source or "")
    if source.startswith(("models:/", "runs:/")) and source != uri:
        return run_of(source)
    raise ValueError(f"{uri}: version {version.version} of {version.name} has no MLflow run (its source: "
                     f"{source or 'none'}); give the model it was registered from")  # fmt: skip


def registered(client: MlflowClient, uri: str) -> str:
    """What the registry holds that `uri` (models:/NAME@ALIAS or models:/NAME/VERSION) may
    have meant: the model's versions and aliases, or the names of the registered models."""
    from mlflow.exceptions import MlflowException

    ref = uri.removeprefix("models:/")
    name = ref.partition("@")[0] if "@" in ref else ref.rpartition("/")[0] or ref
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        held = f"registered models: {', '.join(names)}" if names else "no model is registered there"
        made_by = REGISTERED_BY.get(name)  # one of this project's own: say which command makes it
        return f"{held}; `sessionflow {made_by}` trains and registers {name}" if made_by else held
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    aliases = ", ".join(f"@{alias} -> {version}" for alias, version in sorted(model.aliases.items()))
    found = f"{name} has versions {', '.join(map(str, versions)) or 'none'}"
    return f"{found} and aliases {aliases}" if aliases else found


KINDS = {"session": "a session model", "hierarchy": "a hierarchy model", "segmenter": "a segmenter model"}
# the commands that register this project's models, by their registered names
REGISTERED_BY = {"session-model": "train session", "hierarchy-model": "train hierarchy",
                 "segmenter-model": "train segmenter"}  # fmt: skip


def model_kind(uri: str) -> str | None:
    """What the model at `uri` is (a key of `KINDS`), from its MLmodel file alone: the
    `kind` of its metadata, else the inputs of its signature (session: query_a/query_b;
    hierarchy: text; segmenter: user_id, ts); None when neither says."""
    from mlflow.models import get_model_info

    info = get_model_info(uri)
    kind = (info.metadata or {}).get("kind")
    if kind:
        return kind
    names = set(info.signature.inputs.input_names()) if info.signature is not None else set()
    signs = (("session", "query_a"), ("hierarchy", "text"), ("segmenter", "user_id"))
    found = [kind for kind, column in signs if column in names]
    return found[0] if found else None


def require_model(uri: str, kinds: tuple[str, ...] = (), takes: str | None = None) -> str | None:
    """Check, without loading it, that the store has a model at `uri` (models:/NAME@ALIAS,
    models:/NAME/VERSION, runs:/RUN_ID/PATH or a local model directory), and, with
    `kinds`, that it is one of those kinds (`model_kind`), so that a job refuses a
    missing or wrong model before it changes its output. ValueError in one line otherwise,
    saying what the job takes (`takes`, else the kinds). Returns the model's kind when
    `kinds` asked for it (None: not asked, or not known)."""
    from mlflow.exceptions import MlflowException

    _require_model(uri)
    if not kinds:
        return None
    wanted = takes or " or ".join(KINDS[k] for k in kinds)
    try:
        kind = model_kind(uri)
    except (MlflowException, OSError) as err:
        held = _held_instead(uri)
        raise ValueError(f"{uri}: {held}; this takes {wanted}" if held else
                         f"{uri}: cannot read its MLmodel file ({_first(err)})") from None  # fmt: skip
    if kind is not None and kind not in kinds:
        raise ValueError(f"{uri} is {KINDS.get(kind, kind)}; this takes {wanted}")
    return kind


def _held_instead(uri: str) -> str | None:
    """For a `runs:/` URI with no model there, what its run holds instead: a lookup
    table (`train hierarchy --model lookup` logs its points, not a model that reads
    text), a model at another path of the run, or no model at all. None when the
    run's artifacts cannot be listed."""
    from mlflow.exceptions import MlflowException

    if not uri.startswith("runs:/"):
        return None
    run_id, client = run_of(uri), use_store(existing=True)
    try:
        top = client.list_artifacts(run_id)
        if any(a.path == "table" for a in top) and not any(a.path == "model" for a in top):
            return (
                "a lookup table (train hierarchy --model lookup), whose points are its data's nodes: it reads no text"
            )
        models = [
            a.path
            for a in top
            if a.is_dir and any(f.path.endswith("/MLmodel") for f in client.list_artifacts(run_id, a.path))
        ]
        experiment = client.get_run(run_id).info.experiment_id  # MLflow 3 keeps a run's models apart from its files
        logged = mlflow.search_logged_models([experiment], f"source_run_id = '{run_id}'", output_format="list")
        models += sorted({m.name for m in logged} - set(models))
    except (MlflowException, OSError):
        return None
    if not models:
        return f"run {run_id} logs no model"
    return f"no model at this path; run {run_id} logs {' and '.join(f'runs:/{run_id}/{m}' for m in models)}"


_RUN_ID_PART = re.compile(r"[0-9a-f]{1,31}")  # the first digits of a run id, as `compare` shows them


def _no_model_there(path: str) -> str:
    """Why a path that is no model directory is none: no MLmodel file, and, for a part of
    a run id (`compare` shows its first 8 digits), what the whole id is needed for."""
    if _RUN_ID_PART.fullmatch(path) and not Path(path).exists():
        return (f"no model there (no MLmodel file), and not a whole run id ({len(path)} of its 32 digits: `compare` "
                "shows the first 8, `compare --json` them all)")  # fmt: skip
    return "no model there (no MLmodel file)"


def _first(err: BaseException) -> str:
    return (getattr(err, "message", None) or str(err)).splitlines()[0]


def _require_model(uri: str) -> None:
    from mlflow.exceptions import MlflowException

    if not uri:
        raise ValueError("a model URI is empty: give models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model")
    if not uri.startswith(("models:/", "runs:/")):  # a model directory (a path or a URI)
        if not Path(uri, "MLmodel").exists():
            raise ValueError(f"{uri}: {_no_model_there(uri)}; give models:/NAME@ALIAS or runs:/RUN_ID/model")
        return
    run = run_of(uri)
    if uri.startswith("runs:/"):
        try:
            use_store(existing=True).get_run(run)
        except MlflowException as err:
            raise ValueError(f"{uri}: {err.message.splitlines()[0]} (tracking store: {tracking_uri()})") from None


def load_pyfunc(uri: str) -> mlflow.pyfunc.PyFuncModel:
    """`mlflow.pyfunc.load_model(uri)`; ValueError naming `uri` when the store has no model there
    (an unknown name, version, alias or run, or a path without an MLmodel file), or its
    files cannot be read (a weight file cut short: safetensors' error; a calibration
    that is no number)."""
    from mlflow.exceptions import MlflowException

    if not uri:
        raise ValueError("a model URI is empty: give models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model")
    if uri.startswith(("models:/", "runs:/")):
        run_of(uri)  # the store and the model are there, or one line says what is
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as err:
        raise ValueError(f"{uri}: {err.message.splitlines()[0]} (tracking store: {tracking_uri()})") from None
    except OSError as err:  # no MLmodel file, or a file of a model that is there (a weight file deleted)
        if not uri.startswith(("models:/", "runs:/")) and not Path(uri, "MLmodel").exists():
            raise ValueError(f"{uri}: {_no_model_there(uri)}") from None
        raise ValueError(
            f"{uri}: its model files cannot be read ({err.__class__.__name__}: {first_line(err)})"
        ) from None
    except Exception as err:  # whatever a damaged model raises as it loads (safetensors', pickle's, a calibration's)
        raise ValueError(
            f"{uri}: its model files cannot be read ({err.__class__.__name__}: {first_line(err)})"
        ) from None
