"""Ray Data: where a data job's work runs when it runs on Ray.

The room: `runtime` (joining a cluster or starting a private local Ray), `nodes`
(what every node of a cluster must reach before a job's work starts there),
`staging` (the shuffle of users into buckets), `data` (ingest, segment and mine on
Ray) and `score_job` with `scoring` (the resumable scoring job and its per-user
work). Each task runs the very functions of `sessions/` that the local engine runs.

May import: ray, `sessions/`, `models/` (inside the encoding actors),
`workflows.tracking`. Not `workflows.jobs` (their configs only under
`TYPE_CHECKING`), not the CLI.
"""
