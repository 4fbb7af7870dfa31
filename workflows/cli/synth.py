"""`sessionflow synth`: synthetic logs with ground truth."""

from __future__ import annotations

from workflows.cli.common import peak_rss_mib
from workflows.cli.progress import out, row_progress, summary_table
from workflows.jobs.synth import SynthJob


def synth(job: SynthJob) -> None:
    """Generate a synthetic log with known sessions, missions and reformulations.

    Topics and reformulations come from WordNet's nouns (specialise = hyponym,
    generalise = hypernym, lateral = sibling) plus typos, added or dropped terms
    and repeated navigational queries. Gold columns: gold_session, gold_mission,
    gold_depth (WordNet depth of the query's concept), gold_reformulation.
    """
    from workflows.jobs.synth import expected_rows, run

    style = job.synth.style
    with row_progress(f"synth {style}", total=expected_rows(job)) as progress:
        summary = run(job, on_rows=lambda n: progress.advance(0, n))
    table = {
        "rows": summary.rows,
        "users": summary.users,
        "sessions": summary.sessions,
        "missions": summary.missions,
        "seconds": summary.seconds,
        "peak RSS (MiB)": peak_rss_mib(),
        "output": summary.path,
    }
    out.print(summary_table(f"synth {style}", table))
    for note in summary.notes:  # what it did other than asked: the mine breaker's find (a year's log for 92 days)
        out.print(f"note: {note}", soft_wrap=True, highlight=False)
