"""The session ground truth files of `../shared/data/sessions-gt/`.

- Webis-SMC-12 (Hagen et al. 2013): search *missions* of AOL users. Tab-separated
  `UserID Query TimeStamp ClickRank ClickDomain MissionID [Comment]`; a header line,
  then blocks of rows between dashed lines, blank lines between contiguous runs.
  Missions are numbered per user, so `gold_mission` is `<UserID>/<MissionID>`.
- Gayo-Avello 2009 (as published with Gomes et al. 2019): *sessions* of AOL users.
  `;`-separated without header, `ID;USER_ID;QUERY;URL;DD/MM/YYYY HH:MM;EPOCH;SESSIONID`,
  QUERY double-quoted when it holds a `;`. SESSIONID is global: `gold_session`.
  Time comes from EPOCH (seconds, to the minute), or the date text (to the minute, or
  the second) when EPOCH is missing or bad.
  The two disagree in two thirds of the development rows, and not as a bad value
  would: the text is an hour ahead in 2,202 of the 3,293 (a local time), equal in
  1,088, 6 to 45 minutes off in 3; so a disagreement is not taken for damage. (The
  epoch is the text read as Europe/London time: from 2006-03-26, British summer time,
  an hour behind it; the 3 are that night's skipped hour, all given 01:00's epoch.)

Their ids, ranks, mission and session numbers and epoch seconds are integers, read as
such where written as whole floats (`Columns.integer`: `599381.0` is the user 599381).

Header, dashed and blank lines are layout: they are not records and take no row id,
so `row_id` is the index among query rows. Both are drawn from the AOL log, whose `-`
stands for a query it does not hold: rejected as `placeholder_query`, as in AOL files.
"""

from __future__ import annotations

import polars as pl

from sessions.fields import strip_spaces
from sessions.formats.aol import AOL_TIME_FORMAT, BAD_CLICK_RANK, PLACEHOLDER
from sessions.formats.base import Columns
from sessions.formats.delimited import DelimitedFormat
from sessions.schema import Reason
from sessions.times import epoch_to_utc

WEBIS_COLUMNS = ("UserID", "Query", "TimeStamp", "ClickRank", "ClickDomain", "MissionID", "Comment")
GAYO_COLUMNS = ("ID", "USER_ID", "QUERY", "URL", "DATETIME", "EPOCH", "SESSIONID")


def _nonempty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.strip_chars() != "").then(expr.str.strip_chars())


def _webis(f: Columns) -> dict[str, pl.Expr]:
    user = f.integer("UserID")
    mission = _nonempty(f.integer("MissionID"))
    return {
        "user_id": user,
        "query": f["Query"],
        "ts": f.time("TimeStamp", AOL_TIME_FORMAT),
        "_rank_text": strip_spaces(f["ClickRank"]),  # (a rank given: `BAD_CLICK_RANK`)
        "click_rank": f.integer("ClickRank").cast(pl.Int32, strict=False),
        "click_url": _nonempty(f["ClickDomain"]),
        "_mission": mission,
        "gold_mission": user + "/" + mission,
    }


_WEBIS_CHECKS = (PLACEHOLDER, BAD_CLICK_RANK, (pl.col("_mission").is_null(), Reason.MISSING_LABEL))


def _is_webis_layout(text: pl.Expr) -> pl.Expr:
    """A separator line of dashes, or a blank one, its empty fields written as nothing or as
    `""` (a whole file read by polars, which keeps these lines as rows, and written back)."""
    return text.str.contains(r'^(\s|"")*(-+(\s|"")*)?$')


WEBIS_SMC = DelimitedFormat(
    name="webis-smc",
    sep="\t",
    columns=WEBIS_COLUMNS,
    build=_webis,
    header="required",
    optional_trailing=1,
    rest_in_last=True,  # a free-text comment may hold a tab
    layout=_is_webis_layout,
    checks=_WEBIS_CHECKS,
    judge=("UserID", "TimeStamp"),  # raw as published, or CSV-quoted as pandas writes it back, as AOL's (`aol.py`)
    plain=("ClickRank", "ClickDomain", "MissionID"),
)


def _gayo(f: Columns) -> dict[str, pl.Expr]:
    session = _nonempty(f.integer("SESSIONID"))
    return {
        "user_id": f.integer("USER_ID"),
        "query": f["QUERY"],
        "ts": pl.coalesce(
            epoch_to_utc(f.integer("EPOCH")),
            f.time("DATETIME", "%d/%m/%Y %H:%M"),
            f.time("DATETIME", "%d/%m/%Y %H:%M:%S"),
        ),
        "click_url": _nonempty(f["URL"]),
        "gold_session": session,
    }


GAYO_AVELLO = DelimitedFormat(
    name="gayo-avello",
    sep=";",
    quote='"',
    columns=GAYO_COLUMNS,
    build=_gayo,
    layout=lambda text: text.str.strip_chars() == "",
    checks=(PLACEHOLDER, (pl.col("gold_session").is_null(), Reason.MISSING_LABEL)),
)
