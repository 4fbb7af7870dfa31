"""The AOL query log (Pass et al. 2006): `user-ct-test-collection-XX.txt[.gz]`.

Tab-separated, no quoting, a header line `AnonID Query QueryTime ItemRank ClickURL`:
every field is read as written (`"free games"`, `free "games`, a lone `"` are queries,
quotes and all). A file a user saved back with pandas (`to_csv(sep="\t")`) or another
CSV writer, which puts a field holding a quote in quotes and doubles each quote inside
(`free "games` becomes `"free ""games"`), is read as that writer quoted it, the
texts it was given: its lines are judged when a field opens with a quote
(`dialect.log_dialect`); a file mixing raw and quoted fields, or holding a quote that
does not close on its line, is read raw, the report naming the first such field.
Quirks of the real files, all handled here:
- a query without a click has empty ItemRank and ClickURL;
- a query with several clicks appears once per click (same user, text and time):
  each row is an event, as the log gives it;
- a query-only row may have its empty ItemRank and ClickURL trimmed (three fields, as
  the AOL readme describes such rows): a query without a click;
- `-` stands for a query the log does not hold: rejected as `placeholder_query`;
- bytes that are not UTF-8 (Latin-1 leftovers): rejected as `bad_encoding`;
- an AnonID or ItemRank written as a whole float (`1019251.0`, `3.0`: a part read and
  written back by pandas, which writes an integer column with a missing value so) is
  its integer (`Columns.integer`); a rank that is no whole number (`3.5`) is
  `bad_click_rank`;
- a file saved back by polars (`write_csv(separator="\t")`) writes an empty ItemRank or
  ClickURL held as an empty text (not a null) as `""`: no click, as pandas' empty field
  (`DelimitedFormat.plain`: these columns never hold a quote).

Synthetic logs (`sessionflow synth --style aol`) add the columns `gold_session`,
`gold_mission`, `gold_depth` and `gold_reformulation` after ClickURL; they are read
by name from the header.
"""

from __future__ import annotations

import polars as pl

from sessions.fields import strip_spaces
from sessions.formats.base import Columns
from sessions.formats.delimited import DelimitedFormat
from sessions.schema import GOLD_COLUMNS, Reason

AOL_COLUMNS = ("AnonID", "Query", "QueryTime", "ItemRank", "ClickURL")
AOL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PLACEHOLDER_QUERY = "-"


def _build(f: Columns) -> dict[str, pl.Expr]:
    columns = {
        "user_id": f.integer("AnonID"),
        "query": f["Query"],
        "ts": f.time("QueryTime", AOL_TIME_FORMAT),
        "_rank_text": strip_spaces(f["ItemRank"]),  # (a rank given: `BAD_CLICK_RANK`)
        "click_rank": f.integer("ItemRank").cast(pl.Int32, strict=False),
        "click_url": pl.when(f["ClickURL"] != "").then(f["ClickURL"]),
    }
    columns.update({gold: pl.when(f[gold] != "").then(f[gold]) for gold in GOLD_COLUMNS if gold in f})
    if "gold_depth" in f:  # a synthetic log's WordNet depth: `3.0`, as pandas writes it back, is 3 (was no depth)
        columns["gold_depth"] = pl.when(f["gold_depth"] != "").then(f.integer("gold_depth"))
    return columns


# A click rank given that is not a rank (1 is the first result): AOL's ItemRank, Webis-SMC-12's ClickRank.
BAD_CLICK_RANK = (
    (pl.col("_rank_text") != "") & (pl.col("click_rank").is_null() | (pl.col("click_rank") < 1)),
    Reason.BAD_CLICK_RANK,
)
# AOL's `-` for a query the log does not hold: rejected in AOL and in the files drawn from it (sessions.formats.gold)
PLACEHOLDER = (pl.col("query").str.strip_chars() == PLACEHOLDER_QUERY, Reason.PLACEHOLDER_QUERY)
_CHECKS = (PLACEHOLDER, BAD_CLICK_RANK)


AOL = DelimitedFormat(
    name="aol",
    sep="\t",
    columns=AOL_COLUMNS,
    build=_build,
    header="optional",
    short_fields=3,
    checks=_CHECKS,
    judge=("AnonID", "QueryTime"),  # raw as AOL wrote it, or CSV-quoted as pandas writes a slice back
    plain=("ItemRank", "ClickURL", *GOLD_COLUMNS),
)
