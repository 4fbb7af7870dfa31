"""How a mission's queries evolve: a random walk on the concept hierarchy with
surface edits, one vectorised step for all missions at a time.

Each mission starts at a topic; each later query applies one reformulation to the
mission's current state (concept, name, modifiers):

- specialisation: a hyponym (`cute cats` -> `cute persian cats`, here concept-wise);
- generalisation: a hypernym;
- lateral: a sibling (another hyponym of a hypernym);
- add_term / drop_term: a modifier added or dropped, concept unchanged;
- typo: the same query misspelled (`cute catd`); the state stays correct;
- repeat: the same query again.

Navigational missions (`google`, `myspace.com`) only repeat, with the odd typo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.structure import Structure
from synth.taxonomy import ConceptIndex

OPS = ("start", "specialisation", "generalisation", "lateral", "add_term", "drop_term", "typo", "repeat", "duplicate")
START, SPECIALISE, GENERALISE, LATERAL, ADD, DROP, TYPO, REPEAT, DUPLICATE = range(len(OPS))

# Probabilities of SPECIALISE .. REPEAT after a mission's first query.
OP_PROBS = {
    "aol": (0.22, 0.08, 0.16, 0.14, 0.06, 0.08, 0.26),
    "prompt": (0.08, 0.04, 0.08, 0.32, 0.14, 0.04, 0.30),
}
N_MODIFIER_BITS = 48  # prompt style modifiers, a bit each


@dataclass(frozen=True)
class Walk:
    """The state each query event renders, and how it came about."""

    concept: np.ndarray  # concept index, -1 for navigational queries
    lemma: np.ndarray  # index into ConceptIndex.lemma_text, -1 for navigational queries
    slots: np.ndarray  # (n_slots, n): 0 = empty, else the 1-based choice of a term slot
    modifiers: np.ndarray  # uint64 bit set of style modifiers (prompt style)
    op: np.ndarray  # index into OPS
    variant: np.ndarray  # spelling of a navigational query (google / google.com / www.google.com)


class _Missions:
    """The current state of every mission of a chunk, updated a step at a time.

    Term slots (e.g. prefix, suffix, place) hold 0 when empty, else a 1-based choice
    among `slot_sizes[i]` terms; `slot_start[i]` is the chance a slot starts filled.
    """

    def __init__(
        self, m: int, index: ConceptIndex, style: str, slot_sizes: Sequence[int], slot_start: Sequence[float]
    ) -> None:
        self.index, self.style = index, style
        self.sizes = np.asarray(slot_sizes, dtype=np.int64)[:, None]
        self.start_p = np.asarray(slot_start)[:, None]
        self.concept, self.lemma, self.variant = (np.zeros(m, np.int64) for _ in range(3))
        self.slots = np.zeros((len(slot_sizes), m), np.int64)
        self.modifiers = np.zeros(m, np.uint64)

    def _choices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return 1 + (rng.random((len(self.sizes), n)) * self.sizes).astype(np.int64)

    def start(self, mis: np.ndarray, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.index.topics(u[0], self.style)
        self.concept[mis] = c
        self.lemma[mis] = self.index.lemma(c, u[1])
        filled = rng.random((len(self.sizes), len(mis))) < self.start_p
        self.slots[:, mis] = np.where(filled, self._choices(rng, len(mis)), 0)
        if self.style == "prompt":
            self.modifiers[mis] = _random_bits(rng, len(mis), lo=2, hi=7)
        self.variant[mis] = np.searchsorted([0.6, 0.85], u[2])
        return np.full(len(mis), START)

    def step(self, mis: np.ndarray, op: np.ndarray, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply one reformulation per mission; returns the ops actually applied (a
        move that is impossible here falls back to a possible one)."""
        c = self.concept[mis]
        down, ok_down = self.index.child(c, u[1])
        up, ok_up = self.index.parent(c, u[1])
        side, ok_side = self.index.sibling(c, u[1], u[2])
        op = op.copy()
        op[(op == GENERALISE) & ~ok_up] = SPECIALISE
        op[(op == SPECIALISE) & ~ok_down] = LATERAL
        op[(op == LATERAL) & ~ok_side] = ADD
        new_c = np.select([op == SPECIALISE, op == GENERALISE, op == LATERAL], [down, up, side], c)
        moved = new_c != c
        self.concept[mis] = new_c
        self.lemma[mis[moved]] = self.index.lemma(new_c[moved], u[3][moved])
        if self.style == "prompt":
            return self._edit_modifiers(mis, op, u, rng)
        return self._edit_slots(mis, op, rng)

    def _edit_slots(self, mis: np.ndarray, op: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Query style: add a term in a random empty slot, or empty a random filled one."""
        slots = self.slots[:, mis]
        empty = slots == 0
        op[(op == ADD) & ~empty.any(axis=0)] = DROP
        op[(op == DROP) & empty.all(axis=0)] = ADD
        score = rng.random(slots.shape)
        cols = np.arange(len(mis))
        to_fill = np.where(empty, score, -1.0).argmax(axis=0)
        to_empty = np.where(~empty, score, -1.0).argmax(axis=0)
        add, drop = np.flatnonzero(op == ADD), np.flatnonzero(op == DROP)
        slots[to_fill[add], cols[add]] = self._choices(rng, len(add))[to_fill[add], np.arange(len(add))]
        slots[to_empty[drop], cols[drop]] = 0
        self.slots[:, mis] = slots
        return op

    def _edit_modifiers(self, mis: np.ndarray, op: np.ndarray, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Prompt style: add or drop one style modifier."""
        mods = self.modifiers[mis]
        op[(op == DROP) & (mods == 0)] = ADD
        added = mods | (np.uint64(1) << (u[4] * N_MODIFIER_BITS).astype(np.uint64))
        new = np.select([op == ADD, op == DROP], [added, _drop_random_bit(rng, mods)], mods)
        op[(op == ADD) & (new == mods)] = REPEAT  # the modifier was there already
        self.modifiers[mis] = new
        return op


def walk(
    s: Structure,
    index: ConceptIndex,
    style: str,
    rng: np.random.Generator,
    slot_sizes: Sequence[int],
    slot_start: Sequence[float],
) -> Walk:
    """Walk every mission of a chunk (`slot_sizes`, `slot_start`: see `_Missions`)."""
    n = len(s.step)
    state = _Missions(s.n_missions, index, style, slot_sizes, slot_start)
    cum = np.cumsum(OP_PROBS[style])
    nav_mission = np.zeros(s.n_missions, dtype=bool)
    nav_mission[s.mission[s.nav_site >= 0]] = True
    out = {name: np.zeros(n, np.int64) for name in ("concept", "lemma", "op", "variant")}
    slots = np.zeros((len(slot_sizes), n), np.int64)
    modifiers = np.zeros(n, np.uint64)

    order = np.argsort(s.step, kind="stable")
    bounds = np.searchsorted(s.step[order], np.arange(int(s.step.max(initial=0)) + 2))
    for k in range(len(bounds) - 1):  # all missions' k-th queries at once
        ev = order[bounds[k] : bounds[k + 1]]
        mis = s.mission[ev]
        u = rng.random((6, len(ev)))
        if k == 0:
            op = state.start(mis, u, rng)
        else:
            op = state.step(mis, SPECIALISE + np.searchsorted(cum, u[0] * cum[-1], side="right"), u, rng)
        nav = nav_mission[mis]
        if k > 0:  # navigational missions repeat, now and then misspelled
            op[nav] = np.where(u[5][nav] < 0.1, TYPO, REPEAT)
        out["concept"][ev] = np.where(nav, -1, state.concept[mis])
        out["lemma"][ev] = np.where(nav, -1, state.lemma[mis])
        out["variant"][ev] = state.variant[mis]
        out["op"][ev] = op
        slots[:, ev] = state.slots[:, mis]
        modifiers[ev] = state.modifiers[mis]
    return Walk(slots=slots, modifiers=modifiers, **out)


def _random_bits(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n bit sets with between lo and hi-1 random bits (a few may coincide)."""
    counts = rng.integers(lo, hi, n)
    bits = rng.integers(0, N_MODIFIER_BITS, (n, hi - 1)).astype(np.uint64)
    take = np.arange(hi - 1)[None, :] < counts[:, None]
    return np.bitwise_or.reduce(np.where(take, np.uint64(1) << bits, np.uint64(0)), axis=1)


def _drop_random_bit(rng: np.random.Generator, mods: np.ndarray) -> np.ndarray:
    """Each bit set with one of its bits cleared (a random one when the first tries hit)."""
    out = mods.copy()
    pending = mods != 0
    for _ in range(4):
        bit = np.uint64(1) << rng.integers(0, N_MODIFIER_BITS, len(mods)).astype(np.uint64)
        hit = pending & ((mods & bit) != 0)
        out[hit] = mods[hit] & ~bit[hit]
        pending &= ~hit
    lowest = mods & (~mods + np.uint64(1))  # the lowest set bit
    out[pending] = mods[pending] & ~lowest[pending]
    return out
