"""Column schemas of the canonical event table and the rejected table, and the
reasons a record can be rejected for.

Every ingest output has exactly these columns in this order, whatever the input
format, so that files from different logs concatenate without surprises. Columns a
format does not have are null (AOL has no gold labels, DiffusionDB no clicks).
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

TIMESTAMP = pl.Datetime("us", "UTC")

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.Int64(),  # 0-based index of the record across all inputs, in the order given
    "source": pl.String(),  # the input format: aol, webis-smc, gayo-avello, diffusiondb, ...
    "user_id": pl.String(),
    "ts": TIMESTAMP,
    "query": pl.String(),
    "click_rank": pl.Int32(),
    "click_url": pl.String(),
    # Ground truth, where the input carries it (null otherwise).
    "gold_session": pl.String(),
    "gold_mission": pl.String(),
    "gold_depth": pl.Int32(),  # WordNet depth of the query's concept (synthetic logs)
    "gold_reformulation": pl.String(),  # how the query relates to the previous one (synthetic logs)
}

REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.Int64(),  # the record's place in the input, as for events
    "source_file": pl.String(),
    "line_no": pl.Int64(),  # 1-based physical line (text files) or row (Parquet) in source_file
    "raw": pl.String(),  # the record as read; undecodable bytes appear as \\xNN escapes
    "reason": pl.String(),
}

GOLD_COLUMNS = ("gold_session", "gold_mission", "gold_depth", "gold_reformulation")


class Reason(StrEnum):
    """Why a record went to the rejected table."""

    BAD_ENCODING = "bad_encoding"  # not valid UTF-8
    CONTROL_CHARS = "control_chars"  # NUL or other control bytes: binary junk
    EMPTY_LINE = "empty_line"
    WRONG_FIELD_COUNT = "wrong_field_count"
    TRUNCATED_LINE = "truncated_line"  # last line of a file, without newline and incomplete
    TRUNCATED_STREAM = "truncated_stream"  # what follows the break in a damaged compressed file
    UNCLOSED_QUOTE = "unclosed_quote"  # a quoted field never closed: it ran on to the file's end, lines and all
    BACKSLASH_ESCAPE = "backslash_escape"  # a quote escaped with a backslash (Spark, R) in a file read as RFC 4180
    BAD_JSON = "bad_json"
    NESTED_VALUE = "nested_value"  # a JSON object or array where a user, time, text or label is read
    EMPTY_USER = "empty_user"
    UNKNOWN_USER = "unknown_user"  # a value that stands for no one (deleted_account, \\N, --unknown-user)
    BAD_TIME = "bad_time"
    EMPTY_TEXT = "empty_text"
    PLACEHOLDER_QUERY = "placeholder_query"  # AOL's "-": a query the log does not hold
    BAD_CLICK_RANK = "bad_click_rank"
    MISSING_LABEL = "missing_label"  # a ground-truth row without its session or mission
