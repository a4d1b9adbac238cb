"""How a deal or a lead moves through its stages: the rows of its stage history.

A path is a list of events ``(moment, TYPE_ID, CATEGORY_ID, STAGE_ID)``
(TYPE_ID 1 created, 2 to an intermediate stage, 3 to a final stage, 5 to
another pipeline), strictly increasing in time and cut at "now". The record's
current stage is its last event, so the record and its history always agree.
Paths skip stages, step back, close and re-open, and change pipelines,
because real ones do and naive report code miscounts them.
"""

from __future__ import annotations

from random import Random

from rop.demo.catalog import (
    BY_ID,
    LEAD_FAILURES,
    LEAD_PROCESS,
    LEAD_SUCCESS,
    PIPELINES,
    Pipeline,
    semantic_letter,
)
from rop.demo.clock import DAY, Clock

Event = tuple[int, int, int, str]

CREATED, TO_STAGE, TO_FINAL, TO_PIPELINE = 1, 2, 3, 5

# Mean days between stage moves, per pipeline: tenders are slow, repeat sales quick.
_STEP_DAYS = {0: 3.0, 1: 6.0, 3: 1.5}

# STAGE_ID -> P/S/F for every deal stage and lead status.
SEMANTICS: dict[str, str] = {}
for _p in PIPELINES:
    for _code, _ in _p.process:
        SEMANTICS[_p.stage(_code)] = "P"
    SEMANTICS[_p.stage(_p.success[0])] = "S"
    for _code, _, _extra in _p.failures:
        SEMANTICS[_p.stage(_code)] = semantic_letter(_extra)
LEAD_SEMANTICS: dict[str, str] = {code: "P" for code, _ in LEAD_PROCESS}
LEAD_SEMANTICS[LEAD_SUCCESS[0]] = "S"
LEAD_SEMANTICS.update({code: "F" for code, _ in LEAD_FAILURES})


class _Walk:
    """A path under construction: a clock hand that only moves forward."""

    def __init__(self, rng: Random, clock: Clock, created: int) -> None:
        self.rng = rng
        self.clock = clock
        self.moment = created

    def later(self, mean_days: float, at_least: int = 600) -> int:
        rng = self.rng
        gap = at_least + int(rng.expovariate(1.0 / (mean_days * DAY)))
        self.moment = self.clock.working(self.moment + gap, rng.randrange(3600))
        return self.moment


def _failure(rng: Random, pipe: Pipeline) -> str:
    code = pipe.failures[0][0] if rng.random() < 0.75 else pipe.failures[1][0]
    return pipe.stage(code)


def deal_path(rng: Random, clock: Clock, pipe: Pipeline, created: int) -> list[Event]:
    """The stage history of a deal created at ``created`` in pipeline ``pipe``."""
    walk = _Walk(rng, clock, created)
    events: list[Event] = [(created, CREATED, pipe.id, pipe.stage(pipe.process[0][0]))]
    roll = rng.random()
    fate = "won" if roll < 0.34 else "lost" if roll < 0.78 else "open"
    last = len(pipe.process) - 1
    target = last if fate == "won" else rng.randint(0, last)
    switched = False
    here = 0
    for _ in range(10):
        if here >= target:
            break
        kind = TO_STAGE
        roll = rng.random()
        if roll < 0.1 and here > 0:
            step = here - 1  # a step back: the client went quiet, documents redone
        elif roll < 0.25:
            step = min(here + 2, target)  # a skipped stage
        else:
            step = here + 1
        if not switched and rng.random() < 0.008:
            # Moved to another pipeline (e.g. a sale that turned out to be a tender).
            switched = True
            kind = TO_PIPELINE
            pipe = BY_ID[rng.choice([p.id for p in PIPELINES if p.id != pipe.id])]
            last = len(pipe.process) - 1
            step = min(rng.randint(0, 1), last)
            target = last if fate == "won" else min(target, last)
        walk.later(_STEP_DAYS[pipe.id])
        events.append((walk.moment, kind, pipe.id, pipe.stage(pipe.process[step][0])))
        here = step
    if fate != "open":
        final = pipe.stage(pipe.success[0]) if fate == "won" else _failure(rng, pipe)
        events.append((walk.later(_STEP_DAYS[pipe.id]), TO_FINAL, pipe.id, final))
        if rng.random() < 0.06:
            # Re-opened: the won deal's payment bounced, the lost client came back.
            walk.later(15.0, at_least=2 * DAY)
            here = rng.randint(0, len(pipe.process) - 1)
            events.append((walk.moment, TO_STAGE, pipe.id, pipe.stage(pipe.process[here][0])))
            if rng.random() < 0.6:
                final = pipe.stage(pipe.success[0]) if rng.random() < 0.5 else _failure(rng, pipe)
                events.append((walk.later(_STEP_DAYS[pipe.id]), TO_FINAL, pipe.id, final))
    return _until(events, clock.now)


def lead_path(rng: Random, clock: Clock, created: int, converted: int | None) -> list[Event]:
    """The status history of a lead; ``converted`` is when it became a deal, if it did.

    CATEGORY_ID is always 0 in lead events (leads have no pipelines).
    """
    walk = _Walk(rng, clock, created)
    events: list[Event] = [(created, CREATED, 0, "NEW")]
    if converted is not None:
        span = converted - created
        count = rng.choice((0, 1, 1, 2)) if span > 600 else 0
        moments = sorted({created + 1 + rng.randrange(span - 1) for _ in range(count)})
        for i, moment in enumerate(moments):
            events.append((moment, TO_STAGE, 0, LEAD_PROCESS[min(i + 1, 2)][0]))
        events.append((converted, TO_FINAL, 0, LEAD_SUCCESS[0]))
        return events
    roll = rng.random()
    fate = "junk" if roll < 0.5 else "duplicate" if roll < 0.62 else "open"
    here = 0
    for _ in range(rng.choice((0, 1, 1, 2))):
        here = min(here + rng.choice((1, 1, 2)), len(LEAD_PROCESS) - 1)
        events.append((walk.later(1.0), TO_STAGE, 0, LEAD_PROCESS[here][0]))
    if fate != "open":
        final = LEAD_FAILURES[0][0] if fate == "junk" else LEAD_FAILURES[1][0]
        events.append((walk.later(2.0), TO_FINAL, 0, final))
        if rng.random() < 0.03:
            events.append((walk.later(10.0), TO_STAGE, 0, "IN_PROCESS"))
    return _until(events, clock.now)


def _until(events: list[Event], now: int) -> list[Event]:
    """The events that have happened by ``now`` (the rest lie in the future)."""
    for i, event in enumerate(events):
        if event[0] > now:
            return events[:i]
    return events
