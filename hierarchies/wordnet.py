"""WordNet 3.0 through nltk, from the user's nltk data or, failing that, from Debian's
packages, and the noun hypernym graph as polars tables.

Where WordNet comes from, in order:
1. nltk's own data (`nltk.download("wordnet")`, or `NLTK_DATA`): used as it is;
2. the database of the Debian packages `wordnet-base` and `wordnet-sense-index`
   (`/usr/share/wordnet`, or `$WNSEARCHDIR`): nltk cannot read it in place (it wants
   a `corpora/wordnet/` layout and the `lexnames` file Debian leaves out), so a copy
   is built once under the cache directory, atomically.

The noun graph (synsets, lemmas, glosses, hypernym and instance-hypernym edges) is
cached as Parquet beside it, so only the first call pays nltk's ~10 s load.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from hierarchies.closure import depths

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

DEBIAN_WORDNET = Path("/usr/share/wordnet")

# lexnames(5WN): the 45 lexicographer files, numbered from 00, with their syntactic
# category (1 noun, 2 verb, 3 adjective, 4 adverb).
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


_CACHE_VERSION = 2  # bump when the cached tables change shape or order (2: each synset's parents sorted)


class WordNetNotFound(FileNotFoundError):
    """No WordNet 3.0 database where nltk or `WNSEARCHDIR` looks (`ensure_wordnet` says how to install one):
    a missing file, which every command says in one line."""


def cache_dir() -> Path:
    """Where sessionflow keeps derived data: `$SESSIONFLOW_CACHE` or ~/.cache/sessionflow."""
    root = (
        os.environ.get("SESSIONFLOW_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sessionflow"
    )
    return Path(root)


def lexnames_text() -> str:
    """The `lexnames` file of the WordNet 3.0 database, as lexnames(5WN) gives it."""
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def build_nltk_copy(source: Path, nltk_dir: Path) -> Path:
    """Lay out a WordNet database directory the way nltk reads it: `nltk_dir/corpora/wordnet/`.

    Idempotent; built in a temporary directory and renamed into place. Returns the
    directory; WordNetNotFound when it is not built yet and `source` holds no `data.noun`.
    """
    target = nltk_dir / "corpora" / "wordnet"
    if (target / "lexnames").exists():
        return target
    if not (source / "data.noun").exists():
        raise WordNetNotFound(f"no WordNet database in {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp / item.name)
    if not (tmp / "lexnames").exists():
        (tmp / "lexnames").write_text(lexnames_text())
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@cache
def ensure_wordnet() -> str:
    """Make WordNet loadable by nltk and say where it comes from: the directory nltk reads
    WordNet from (nltk's own data, else a copy of `WNSEARCHDIR`, by default Debian's
    `wordnet-base`, under `cache_dir()`). WordNetNotFound (a FileNotFoundError), saying how to
    install it, when neither has it."""
    import nltk

    try:
        return str(nltk.data.find("corpora/wordnet"))
    except LookupError:
        pass
    source = Path(os.environ.get("WNSEARCHDIR", DEBIAN_WORDNET))
    nltk_dir = cache_dir() / "nltk_data"
    try:
        target = build_nltk_copy(source, nltk_dir)
    except WordNetNotFound:
        raise WordNetNotFound(
            "WordNet 3.0 not found. Either run `python -m nltk.downloader wordnet`, or install "
            "Debian's `wordnet-base wordnet-sense-index` (apt-get install -y wordnet-base "
            "wordnet-sense-index) or point WNSEARCHDIR at a WordNet 3.0 dict directory."
        ) from None
    if str(nltk_dir) not in nltk.data.path:
        nltk.data.path.append(str(nltk_dir))
    return str(target)


def wordnet() -> WordNetCorpusReader:
    """nltk's WordNet reader, loaded from wherever `ensure_wordnet` found it."""
    ensure_wordnet()
    from nltk.corpus import wordnet as wn

    wn.ensure_loaded()
    return wn


@dataclass(frozen=True)
class NounGraph:
    """WordNet's nouns and their direct hypernym edges.

    nodes: `id` (synset name, e.g. `dog.n.01`), `name` (first lemma, readable),
        `lemmas` (list of readable lemmas), `lemma_counts` (their SemCor tag counts,
        how often each sense occurs in running text), `gloss`, `lexname`.
    edges: `child`, `parent`, `kind` (`hypernym` or `instance`).
    """

    nodes: pl.DataFrame
    edges: pl.DataFrame


def noun_graph(refresh: bool = False) -> NounGraph:
    """The noun graph of WordNet, from the Parquet cache when it is there."""
    where = cache_dir() / f"wordnet-3.0-v{_CACHE_VERSION}"
    nodes_file, edges_file = where / "nouns.parquet", where / "noun_edges.parquet"
    if not refresh and nodes_file.exists() and edges_file.exists():
        return NounGraph(pl.read_parquet(nodes_file), pl.read_parquet(edges_file))
    graph = _extract_noun_graph()
    _write_parquet(graph.nodes, nodes_file)
    _write_parquet(graph.edges, edges_file)
    return graph


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write `frame` to `path` atomically: a temporary name beside it, then a rename, so a
    killed process never leaves a half cache file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def _readable(lemma: str) -> str:
    return lemma.replace("_", " ")


def _extract_noun_graph() -> NounGraph:
    wn = wordnet()
    ids, names, lemmas, counts, glosses, lexnames = [], [], [], [], [], []
    children, parents, kinds = [], [], []
    for synset in wn.all_synsets(pos="n"):
        sid = synset.name()
        words = [_readable(n) for n in synset.lemma_names()]
        ids.append(sid)
        names.append(words[0])
        lemmas.append(words)
        counts.append([lemma.count() for lemma in synset.lemmas()])
        glosses.append(synset.definition())
        lexnames.append(synset.lexname())
        for kind, related in (("hypernym", synset.hypernyms()), ("instance", synset.instance_hypernyms())):
            # sorted: nltk keeps a synset's parents in a set, whose order is the process's hash seed's, and
            # `synth` draws by this order (the demo's seeded log had 12,818 to 12,850 true sessions by machine)
            for parent in sorted(related, key=lambda s: s.name()):
                children.append(sid)
                parents.append(parent.name())
                kinds.append(kind)
    nodes = pl.DataFrame(
        {"id": ids, "name": names, "lemmas": lemmas, "lemma_counts": counts, "gloss": glosses, "lexname": lexnames},
        schema={
            "id": pl.String, "name": pl.String, "lemmas": pl.List(pl.String), "lemma_counts": pl.List(pl.Int32),
            "gloss": pl.String, "lexname": pl.String,
        },
    )  # fmt: skip
    edges = pl.DataFrame({"child": children, "parent": parents, "kind": kinds}).unique(maintain_order=True)
    return NounGraph(nodes, edges)


def noun_concepts(graph: NounGraph | None = None) -> pl.DataFrame:
    """The noun nodes with their depth below entity.n.01 (shortest hypernym path)."""
    graph = graph or noun_graph()
    return graph.nodes.join(depths(graph.edges), on="id", how="left")
