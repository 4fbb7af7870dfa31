"""The text models' pyfuncs read every input form MLflow hands them, as pandas would:
a dict of lists is one text a row (MLflow gives it to the model as one row of lists)."""

from __future__ import annotations

import json
import re
import warnings

import mlflow
import numpy as np
import pandas as pd
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
