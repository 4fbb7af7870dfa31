"""The text models' pyfuncs read every input form MLflow hands them, as pandas would:
a dict of lists is one text a row (MLflow gives it to the model as one row of lists)."""

from __future__ import annotations

import datetime
import json
import math
import re
import warnings
from decimal import Decimal
from fractions import Fraction

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.calibration import Calibration
from models.encoder import TINY, load_encoder
from models.hierarchy import HierarchyTextModel
from workflows.tracking.hierarchy_model import SIGNATURE as HIERARCHY_SIGNATURE
from workflows.tracking.hierarchy_model import HierarchyModel
from workflows.tracking.session_model import SIGNATURE as SESSION_SIGNATURE
from workflows.tracking.session_model import SessionModel
from workflows.tracking.store import rows_of


def _saved(tmp_path_factory: pytest.TempPathFactory, model, signature, artifacts: dict[str, str]):
    """`model` saved as an MLflow pyfunc with `signature` and `artifacts` and loaded back, as a
    user loads a registered one."""
    path = tmp_path_factory.mktemp("pyfunc") / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's note on pickling a Python object
        mlflow.pyfunc.save_model(str(path), python_model=model, signature=signature, artifacts=artifacts,
                                 pip_requirements=[])  # fmt: skip
    return mlflow.pyfunc.load_model(str(path))


@pytest.fixture(scope="module")
def session_pyfunc(tmp_path_factory):
    work = tmp_path_factory.mktemp("session")
    load_encoder(TINY).save(work / "encoder")
    (work / "calibration.json").write_text(json.dumps(Calibration(5.0, -2.0).to_dict()))
    artifacts = {"encoder": str(work / "encoder"), "calibration": str(work / "calibration.json")}
    return _saved(tmp_path_factory, SessionModel(), SESSION_SIGNATURE, artifacts)


@pytest.fixture(scope="module")
def hierarchy_pyfunc(tmp_path_factory):
    work = tmp_path_factory.mktemp("hierarchy")
    HierarchyTextModel(load_encoder(TINY), 3).save(work / "model")
    return _saved(tmp_path_factory, HierarchyModel(), HIERARCHY_SIGNATURE, {"model": str(work / "model")})


def test_a_dict_of_lists_scores_each_pair_as_the_frame_does(session_pyfunc):
    # the API user's find: one p_same (of the text "['cute catd', 'paris hotels']") for two pairs
    a, b = ["cute catd", "paris hotels"], ["cute cats", "flu symptoms"]
    framed = session_pyfunc.predict(pd.DataFrame({"query_a": a, "query_b": b}))
    listed = session_pyfunc.predict({"query_a": a, "query_b": b})
    assert len(listed) == 2
    pd.testing.assert_frame_equal(listed, framed)
    embedded = session_pyfunc.predict({"query": ["cute cats", "new york", "x"]})
    vectors = session_pyfunc.predict(pd.DataFrame({"query": ["cute cats", "new york", "x"]}))
    np.testing.assert_allclose(np.stack(embedded["embedding"]), np.stack(vectors["embedding"]))
    # a dict of one text a column and a list of dicts still read as before
    assert len(session_pyfunc.predict({"query_a": "x", "query_b": "y"})) == 1
    assert len(session_pyfunc.predict([{"query_a": "x", "query_b": "y"}, {"query_a": "z", "query_b": "w"}])) == 2


def test_lists_of_other_lengths_or_a_list_in_a_frame_are_refused(session_pyfunc):
    with pytest.raises(ValueError, match="lists of 2, 3 values"):
        session_pyfunc.predict({"query_a": ["a", "b"], "query_b": ["c", "d", "e"]})
    with pytest.raises(ValueError, match="query_b: row 1 holds a list, not a text"):
        session_pyfunc.predict(pd.DataFrame({"query_a": ["a", "b"], "query_b": ["c", ["d", "e"]]}))


def test_a_missing_text_of_a_pandas_string_column_is_missing_not_the_text_na(session_pyfunc, hierarchy_pyfunc):
    """The change breaker's find: pandas' NA (a `string` column's missing value) was embedded
    and placed as the text "<NA>"; None and NaN were missing."""
    given = pd.array(["cute cats", None], dtype="string")
    na = np.stack(session_pyfunc.predict(pd.DataFrame({"query": given}))["embedding"])
    none = np.stack(session_pyfunc.predict(pd.DataFrame({"query": ["cute cats", None]}))["embedding"])
    np.testing.assert_allclose(na, none)
    assert np.isnan(hierarchy_pyfunc.predict(pd.DataFrame({"text": given}))["norm"][1])
    framed = session_pyfunc.predict(pd.DataFrame({"query_a": [["a", "b"]], "query_b": [pd.NA]}))  # a list beside NA
    assert len(framed) == 2 and framed["p_same"].isna().all()


def test_the_hierarchy_model_reads_a_dict_of_lists_too(hierarchy_pyfunc):
    texts = ["animal", "a small dog", "a small dog"]
    listed = hierarchy_pyfunc.predict({"text": texts})
    framed = hierarchy_pyfunc.predict(pd.DataFrame({"text": texts}))
    assert len(listed) == 3
    np.testing.assert_allclose(np.stack(listed["point"]), np.stack(framed["point"]))
    np.testing.assert_allclose(listed["norm"], framed["norm"])


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


def _columns(k: int, n: int) -> st.SearchStrategy:
    """k columns of n texts each, some missing."""
    return st.lists(st.lists(st.one_of(st.none(), texts), min_size=n, max_size=n), min_size=k, max_size=k)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.tuples(st.integers(1, 3), st.integers(0, 6)).flatmap(lambda kn: _columns(*kn)))
def test_one_row_of_lists_is_the_frame_pandas_reads_from_the_dict(columns):
    """The kind: whatever the lists (empty, one text, missing texts), the one row MLflow
    hands over becomes the frame pandas builds from the same dict."""
    given = {f"c{i}": values for i, values in enumerate(columns)}
    one_row = pd.DataFrame([given])  # MLflow's form: each cell a whole list
    pd.testing.assert_frame_equal(rows_of(one_row), pd.DataFrame(given), check_dtype=False)
    framed = pd.DataFrame(given)
    if len(framed) != 1:  # a frame of one text a row is left as it is
        assert rows_of(framed) is framed


def test_a_served_model_reads_a_null_text_as_missing_in_every_request_form(session_pyfunc, hierarchy_pyfunc):
    """The kind: a null in serving's `inputs` JSON (`mlflow models serve`) arrived as the
    text "None" (MLflow parses those columns by the signature's string type with numpy's
    str) and was scored as that query; `dataframe_records` gave a missing one. The
    signatures' text columns are `AnyType` now, read by `store.text_cells`."""
    from fastapi.testclient import TestClient
    from mlflow.pyfunc.scoring_server import init

    session, hierarchy = TestClient(init(session_pyfunc)), TestClient(init(hierarchy_pyfunc))
    pairs = {"query_a": ["cute cats", None, "None"], "query_b": ["cute cat", "cute cats", "cute cats"]}
    records = [dict(zip(pairs, row, strict=True)) for row in zip(*pairs.values(), strict=True)]
    for body in ({"inputs": pairs}, {"dataframe_records": records}, {"dataframe_split": {
            "columns": list(pairs), "data": [list(row) for row in zip(*pairs.values(), strict=True)]}}):  # fmt: skip
        answer = session.post("/invocations", json=body)
        assert answer.status_code == 200, answer.text
        p_same = [row["p_same"] for row in answer.json()["predictions"]]
        assert p_same[0] == p_same[0] and p_same[1] != p_same[1] and p_same[2] == p_same[2], (body, p_same)  # NaN
        texts = {"inputs": {"text": ["animal", None]}}
        norms = [row["norm"] for row in hierarchy.post("/invocations", json=texts).json()["predictions"]]
        assert norms[0] == norms[0] and norms[1] != norms[1]
    # a cell of a mapping is refused in one line, as a list is (was its printed form)
    refused = session.post("/invocations", json={"inputs": {"query": [{"q": "cats"}]}})
    assert refused.status_code == 400 and "query: row 0 holds a mapping, not a text" in refused.text


def test_text_cells_read_bytes_as_utf8_and_refuse_what_holds_many_values(session_pyfunc):
    """The change breaker's find: with the signatures' text columns `AnyType`, bytes reached
    `str` and were segmented as the text "b'cute cats'" (MLflow's string type had decoded
    them). Bytes are UTF-8 text; a set is refused as a list is."""
    from workflows.tracking.store import text_cells

    given = pd.Series(["cute cats", b"cute cat toys", bytearray("caf\u00e9".encode()), None, 7, np.nan,
                       np.float32("nan"), pd.NaT], name="q")  # fmt: skip
    assert text_cells(given) == ["cute cats", "cute cat toys", "caf\u00e9", None, "7", None, None, None]
    for bad, said in (({"a"}, "row 0 holds a set"), ({"a": 1}, "row 0 holds a mapping"),
                      (b"\xff\xfe", "row 0 holds bytes that are no UTF-8 (invalid start byte at byte 0)")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(f"q: {said}")):
            text_cells(pd.Series([bad], name="q"))
    as_bytes = session_pyfunc.predict(pd.DataFrame({"query_a": [b"cute cats"], "query_b": [b"cute cat"]}))
    as_text = session_pyfunc.predict(pd.DataFrame({"query_a": ["cute cats"], "query_b": ["cute cat"]}))
    pd.testing.assert_frame_equal(as_bytes, as_text)


def _column(cells: list, name: str = "q") -> pd.Series:
    """`cells` as one object column, each cell kept as the object it is (a list, a Series)."""
    held = np.empty(len(cells), dtype=object)
    for i, cell in enumerate(cells):
        held[i] = cell
    return pd.Series(held, dtype=object, name=name)


def test_text_cells_read_every_kind_of_cell_by_one_rule():
    """The reviewer's find: a memoryview, a generator, a pandas Series, a float, a bool or a
    datetime in a text column was scored as its printed form ("<memory at 0x...>",
    "<generator object ...>", "0    a\\ndtype: str", "1.5", "True"). Bytes of every kind
    are UTF-8 text, numpy's str_ a text, integers their digits; anything else is refused
    in one line naming the column, the row and what it holds."""
    from workflows.tracking.store import text_cells

    read = [memoryview(b"cute cats"), np.bytes_(b"caf\xc3\xa9"), np.str_("new york"), np.int64(911), 7,
            np.datetime64("NaT"), bytearray(b"flu"), 599381.0, np.float32(1.5), 1e16, Decimal("599381.00"),
            Decimal("1.50"), True, np.bool_(False)]  # fmt: skip
    # numbers and booleans as `ingest` reads a typed table's (README): a whole float is its integer
    assert text_cells(_column(read)) == ["cute cats", "caf\u00e9", "new york", "911", "7", None, "flu", "599381",
                                         "1.5", "1e+16", "599381", "1.5", "true", "false"]  # fmt: skip
    # a float column (pandas' integers with a missing value; served JSON's `[911, null]`): the same rule
    assert text_cells(pd.Series([911, None, 2.5], name="q")) == ["911", None, "2.5"]
    assert all(type(text) is str for text in text_cells(_column(read)) if text is not None)
    many = "not a text; give one text a row"
    refused = [
        ((x for x in ["a"]), f"holds an iterator, {many}"),
        (iter(["a"]), f"holds an iterator, {many}"),
        (pd.Series(["a"]), f"holds a pandas Series, {many}"),
        (("a", "b"), f"holds a tuple, {many}"),
        (np.array("a"), f"holds an array, {many}"),
        (range(2), f"holds a range, {many}"),
        (frozenset({"a"}), f"holds a set, {many}"),
        (Fraction(1, 2), "holds a Fraction (1/2), not a text; give texts or numbers"),
        (Decimal("Infinity"), "holds a Decimal (Infinity), not a text; give texts or numbers"),
        (pd.Timestamp("2006-03-01"), "holds a Timestamp, not a text; give texts"),
        (datetime.date(2006, 3, 1), "holds a date, not a text; give texts"),
        (np.datetime64("2006-03-01"), "holds a datetime64, not a text; give texts"),
        (np.timedelta64(5, "s"), "holds a timedelta64, not a text; give texts"),  # an integer to numpy
        (memoryview(np.arange(2, dtype=np.int32)), "holds a memoryview of 4-byte items, not a text; give texts"),
        (object(), "holds an object, not a text; give texts"),
        (bytearray(b"ok \xff"), "holds bytes that are no UTF-8 (invalid start byte at byte 3); give texts"),
        (memoryview(b"\xc3"), "holds bytes that are no UTF-8 (unexpected end of data at byte 0); give texts"),
        (np.bytes_(b"\xe9t\xe9"), "holds bytes that are no UTF-8 (invalid continuation byte at byte 0); give texts"),
    ]
    for cell, said in refused:
        with pytest.raises(ValueError) as err:
            text_cells(_column(["fine", cell], name="query_b"))
        assert str(err.value) == f"query_b: row 1 {said}"


REFUSED = object()  # a cell `text_cells` refuses in one line


def _float_text(x: float) -> str | None:
    """A float as `ingest` reads a typed table's: a whole one below 2**53 its integer, an
    infinity missing, another as polars writes it (README, "Reading logs", the `table` format)."""
    if not math.isfinite(x):
        return None
    if x == int(x) and abs(x) < 2**53:
        return str(int(x))
    return pl.Series([x], dtype=pl.Float64).cast(pl.String).item()


def _decimal_text(d: Decimal) -> str | object:
    """A Decimal as its number, trailing zeros of its fraction dropped (599381.00 is 599381);
    an infinite one refused."""
    if not d.is_finite():
        return REFUSED
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _utf8(data: bytes) -> str | object:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return REFUSED


_texts = st.text(max_size=6)
_ints = st.integers(-(2**62), 2**62)
# (a cell, what the documented rule makes of it: its text, None, or REFUSED)
_cells = st.one_of(
    _texts.map(lambda t: (t, t)),
    _texts.map(lambda t: (np.str_(t), str(np.str_(t)))),  # numpy's str_ drops trailing NULs when made
    st.one_of(st.binary(max_size=6), _texts.map(str.encode)).flatmap(
        lambda b: st.sampled_from(
            [
                (b, _utf8(b)),
                (bytearray(b), _utf8(b)),
                (memoryview(b), _utf8(b)),
                (np.bytes_(b), _utf8(bytes(np.bytes_(b)))),
            ]
        )
    ),
    _ints.map(lambda i: (i, str(i))),
    _ints.map(lambda i: (np.int64(i), str(i))),
    st.sampled_from([None, np.nan, np.float32("nan"), pd.NA, pd.NaT, np.datetime64("NaT"), np.timedelta64("NaT")]).map(
        lambda m: (m, None)
    ),
    st.floats(allow_nan=False).map(lambda x: (x, _float_text(x))),
    st.floats(allow_nan=False, width=32).map(lambda x: (np.float32(x), _float_text(float(np.float32(x))))),
    st.decimals(allow_nan=False).map(lambda d: (d, _decimal_text(d))),
    st.booleans().map(lambda b: (b, "true" if b else "false")),
    st.booleans().map(lambda b: (np.bool_(b), "true" if b else "false")),
    st.one_of(
        st.fractions(),
        st.complex_numbers(),
        st.datetimes(),
        st.dates(),
        st.times(),
        st.timedeltas(),
        st.datetimes().map(pd.Timestamp),
        st.datetimes().map(np.datetime64),
        st.timedeltas().map(np.timedelta64),
        st.integers(0, 9).map(lambda i: np.timedelta64(i, "s")),
        st.lists(_texts, max_size=3),
        st.lists(_texts, max_size=3).map(tuple),
        st.lists(_texts, max_size=3).map(np.array),
        st.lists(_texts, max_size=3).map(pd.Series),
        st.lists(_texts, max_size=3).map(lambda texts: (t for t in texts)),
        st.lists(_texts, max_size=3).map(iter),
        st.sets(_texts, max_size=3),
        st.dictionaries(_texts, _texts, max_size=2),
        st.integers(0, 3).map(range),
        st.lists(st.integers(0, 9), max_size=3).map(lambda i: memoryview(np.array(i, dtype=np.int64))),
        st.just(object()),
    ).map(lambda v: (v, REFUSED)),
)


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(_cells, min_size=1, max_size=5), name=st.sampled_from(["query", "query_a", "text"]))
def test_every_cell_is_its_text_missing_or_refused_in_one_line(cells, name):
    """The kind: whatever a text column's cells hold, each becomes the plain `str` (or None)
    the documented rule gives it (`store.text_of`), or the column is refused with a one-line
    ValueError naming the column and the first such row; never a printed form ('<... at 0x')."""
    from workflows.tracking.store import text_cells

    column = _column([cell for cell, _ in cells], name=name)
    expected = [text for _, text in cells]
    if REFUSED not in expected:
        texts = text_cells(column)
        assert texts == expected
        assert all(text is None or type(text) is str for text in texts)
        return
    with pytest.raises(ValueError) as err:
        text_cells(column)
    message = str(err.value)
    assert message.startswith(f"{name}: row {expected.index(REFUSED)} holds "), message
    assert "\n" not in message and " at 0x" not in message and "<" not in message, message


@pytest.fixture(scope="module")
def segmenter_pyfunc(tmp_path_factory):
    """The segmenter pyfunc around a classifier that joins every pair (what a fit on pairs of one
    class gives), saved and loaded back as a user loads a registered one."""
    from sessions.learned import LearnedConfig, SameSessionClassifier
    from workflows.tracking.segmenter_model import SIGNATURE as SEGMENTER_SIGNATURE
    from workflows.tracking.segmenter_model import SegmenterModel

    model = SegmenterModel(SameSessionClassifier(None, LearnedConfig(), constant=1.0))
    return _saved(tmp_path_factory, model, SEGMENTER_SIGNATURE, {})


def test_the_loaded_pyfuncs_read_bytes_of_every_kind_and_refuse_other_cells(
    session_pyfunc, hierarchy_pyfunc, segmenter_pyfunc
):
    """Through MLflow's load path (`mlflow.pyfunc.load_model` of a saved model): a memoryview,
    numpy's bytes_ and str_ are the texts they hold in all three models, a generator, a fraction
    and a datetime are refused in one line (they were scored as their printed form)."""
    texts = ["cute cats", "caf\u00e9 paris"]
    held = _column([memoryview(texts[0].encode()), np.bytes_(texts[1].encode())], name="query")
    as_str = _column([np.str_(texts[0]), texts[1]], name="query")
    plain = session_pyfunc.predict(pd.DataFrame({"query": texts}))["embedding"]
    for cells in (held, as_str):
        embedded = session_pyfunc.predict(pd.DataFrame({"query": cells}))["embedding"]
        np.testing.assert_allclose(np.stack(embedded), np.stack(plain))
        norms = hierarchy_pyfunc.predict(pd.DataFrame({"text": cells.rename("text")}))["norm"]
        np.testing.assert_allclose(norms, hierarchy_pyfunc.predict(pd.DataFrame({"text": texts}))["norm"])
    log = {"user_id": [7, 7], "ts": pd.to_datetime(["2006-03-01 10:00", "2006-03-01 10:01"])}
    answered = segmenter_pyfunc.predict(pd.DataFrame({**log, "query": held}))
    assert answered["query"].tolist() == texts and answered["user_id"].tolist() == ["7", "7"]
    assert answered["session_id"].nunique() == 1
    refusals = [
        (session_pyfunc, {"query_a": texts, "query_b": _column(["a", (t for t in "ab")])},
         "query_b: row 1 holds an iterator, not a text; give one text a row"),
        (hierarchy_pyfunc, {"text": _column([pd.Timestamp("2006-03-01"), "a"])},
         "text: row 0 holds a Timestamp, not a text; give texts"),
        (segmenter_pyfunc, {**log, "query": _column(["a", Fraction(1, 2)])},
         "query: row 1 holds a Fraction (1/2), not a text; give texts or numbers"),
        (segmenter_pyfunc, {**log, "user_id": [599381.0, np.nan], "query": texts},
         "1 row has no user_id (the first: row 1): give every row one"),
    ]  # fmt: skip
    # numbers as `ingest` reads them: pandas' float users (integers with a missing value) are the integers
    floats = segmenter_pyfunc.predict(pd.DataFrame({**log, "user_id": [599381.0, 599381.0], "query": [911, 2.5]}))
    assert floats["user_id"].tolist() == ["599381", "599381"] and floats["query"].tolist() == ["911", "2.5"]
    for model, columns, said in refusals:
        with pytest.raises(ValueError) as err:
            model.predict(pd.DataFrame(columns))
        assert str(err.value) == said


def test_a_one_row_input_of_a_numpy_scalar_array_is_refused_in_one_line(hierarchy_pyfunc):
    """`rows_of` took a 0-d array for a list and failed on its length ("len() of unsized
    object", a TypeError): it is one cell, refused as an array."""
    with pytest.raises(ValueError, match=re.escape("text: row 0 holds an array, not a text; give one text a row")):
        hierarchy_pyfunc.predict({"text": np.array("animal")})
    with pytest.raises(ValueError, match=re.escape("text: row 0 holds an array, not a text")):
        hierarchy_pyfunc.predict(pd.DataFrame({"text": _column([np.array("animal")])}))
