"""Text-to-image prompt logs.

- DiffusionDB (Wang et al. 2023) `metadata.parquet`: one row per generated image,
  `image_name, prompt, part_id, seed, step, cfg, sampler, width, height, user_name,
  timestamp, image_nsfw, prompt_nsfw`; `user_name` is a hash, `timestamp` UTC to the
  minute. Several images of one prompt are several events, as in the log.
  Synthetic prompt logs (`sessionflow synth --style prompt`) are DiffusionDB files
  with the extra columns `gold_session, gold_mission, gold_depth, gold_reformulation`.
- Midjourney threads (Don-Yehiya et al. 2023) CSV: `text, args, channel_id, userid,
  timestamp, label, id, url_png, main_content, thread_id, ...`. A thread is a user's
  attempts at one target image, kept as `gold_mission`.
"""

from __future__ import annotations

import polars as pl

from sessions.fields import strip_spaces
from sessions.formats.base import Columns
from sessions.formats.columnar import ParquetFormat
from sessions.formats.delimited import DelimitedFormat
from sessions.schema import GOLD_COLUMNS

DIFFUSIONDB_COLUMNS = (
    "image_name", "prompt", "part_id", "seed", "step", "cfg", "sampler",
    "width", "height", "user_name", "timestamp", "image_nsfw", "prompt_nsfw",
)  # fmt: skip
MIDJOURNEY_COLUMNS = (
    "text", "args", "channel_id", "userid", "timestamp", "label", "id", "url_png", "main_content", "thread_id",
)  # fmt: skip


def _diffusiondb(f: Columns) -> dict[str, pl.Expr]:
    columns = {
        "user_id": strip_spaces(f["user_name"].cast(pl.String)),  # a hash: text, never a number
        "ts": f.time("timestamp"),
        "query": f["prompt"],
    }
    columns.update({gold: f[gold] for gold in GOLD_COLUMNS if gold in f})
    return columns


def _midjourney(f: Columns) -> dict[str, pl.Expr]:
    thread = f["thread_id"].str.strip_chars()
    return {
        "user_id": f.integer("userid"),  # Discord's user id
        "ts": f.time("timestamp"),
        "query": f["text"],
        "gold_mission": pl.when(thread != "").then(thread),
    }


# DiffusionDB writes `deleted_account` for every person who deleted an account.
DIFFUSIONDB = ParquetFormat(
    name="diffusiondb",
    build=_diffusiondb,
    unknown_users=("deleted_account",),
    columns=("user_name", "timestamp", "prompt", *GOLD_COLUMNS),
)  # the rest is not read

MIDJOURNEY = DelimitedFormat(
    name="midjourney",
    sep=",",
    quote='"',
    multiline=True,
    columns=MIDJOURNEY_COLUMNS,
    build=_midjourney,
    header="required",
)
