"""The nightly fit in independent parts, and the switch to the lists they wrote.

A **plan** (:func:`plan`; plain JSON, so that Celery can carry it) pins the fit's snapshot of
interactions (:mod:`.snapshot`) and splits the work into parts: the families of
:data:`.engine.FAMILIES`, the similarity families in shares of blocks of products, packed into
the number of parts asked for. Each part (:func:`run_part`) fits its families on the snapshot
and writes their lists under the fit's id, beside the lists served. When every part is done,
:func:`finish` switches them in, in one transaction, publishes them and records the fit:
serving reads only switched-in lists, so it never sees half a fit. A fit that does not finish
leaves the lists served as they were; the next fit deletes what it wrote (:func:`discard_others`).

:func:`run_here` runs a plan's parts one after another in this process, :mod:`.distributed` on
Celery workers. Either way the lists are those of :func:`.engine.fit` on the same interactions:
a family gives the same lists in one part or in many.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import time
from typing import Any

from django.db import transaction

from ..conf import app_settings
from . import coldstart, engine, snapshot, store

logger = logging.getLogger("personalization")

AUTO = "auto"
TOP_N = 50
# The most shares a family fitted in blocks is split into.
MAX_SHARES = 64

Plan = dict[str, Any]
Unit = list[Any]  # [family name, share index, share count]


def plan(now: dt.datetime, *, parts: int | str | None = None, top_n: int = TOP_N) -> Plan:
    """A fit as of ``now`` over the last ``RECOMMENDATION_HISTORY_DAYS``, in ``parts`` parts
    (see :func:`split`)."""
    since = now - dt.timedelta(days=float(app_settings.RECOMMENDATION_HISTORY_DAYS))
    return {
        "fit": secrets.token_hex(12),
        "now": now.isoformat(),
        "since": since.isoformat(),
        "until_id": snapshot.last_id(),
        "top_n": top_n,
        "planned_at": time.time(),
        "parts": split(parts),
    }


def split(parts: int | str | None) -> list[list[Unit]]:
    """The families of lists in parts, as ``[family, share index, share count]`` units.

    ``None`` (or 0): one part of every family. ``"auto"``: a part per family, and a family
    fitted in blocks of products in as many shares as it takes for none to cost more than
    the costliest other family. A number: that many parts, the auto split's shares made
    finer until there are enough of them, then the shares packed costliest first into the
    part that costs least so far (by :attr:`.engine.Family.cost`)."""
    families = engine.FAMILIES
    if not parts:
        return [[[family.name, 0, 1] for family in families]]
    if parts != AUTO and (isinstance(parts, bool) or not isinstance(parts, int) or parts < 1):
        raise ValueError(
            f'RECOMMENDATION_FIT_PARTS must be None, "auto" or a positive number, not {parts!r}'
        )
    heaviest = max((family.cost for family in families if not family.blocks), default=1.0)
    shares = {
        family.name: max(1, math.ceil(family.cost / heaviest)) if family.blocks else 1
        for family in families
    }
    blocked = [family for family in families if family.blocks]
    while parts != AUTO and blocked and sum(shares.values()) < int(parts):
        costliest = max(blocked, key=lambda family: family.cost / shares[family.name])
        if shares[costliest.name] >= MAX_SHARES:
            break
        shares[costliest.name] += 1
    units = [
        (position, family, index)
        for position, family in enumerate(families)
        for index in range(shares[family.name])
    ]
    count = len(units) if parts == AUTO else min(int(parts), len(units))
    packed: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for position, family, index in sorted(units, key=lambda u: -u[1].cost / shares[u[1].name]):
        lightest = loads.index(min(loads))
        packed[lightest].append((position, index))
        loads[lightest] += family.cost / shares[family.name]
    return [
        [[families[position].name, index, shares[families[position].name]]
         for position, index in sorted(part)]
        for part in packed
    ]  # fmt: skip


def describe(units: list[Unit]) -> str:
    """``popularity, viewed_together 1/2``: what a part fits, for the log."""
    return ", ".join(name if count == 1 else f"{name} {index + 1}/{count}"
                     for name, index, count in units)  # fmt: skip


def family(name: str) -> engine.Family:
    for candidate in engine.FAMILIES:
        if candidate.name == name:
            return candidate
    raise ValueError(f"No family of recommendation lists is called {name!r}")


def run_part(plan: Plan, index: int) -> dict[str, Any]:
    """Fit one part of the plan and write its lists under the fit's id (again, if it ran
    before). Returns what the switch checks: the lists written, the interactions read."""
    started = time.monotonic()
    units = plan["parts"][index]
    events = snapshot.events(plan)
    read = time.monotonic() - started
    lists: engine.Lists = {}
    if len(events.visitor):
        families = [family(name) for name, _, _ in units]
        categories, replenishable = (
            snapshot.catalog() if any(item.catalog for item in families) else (None, None)
        )
        options = engine.Options(
            top_n=plan["top_n"], categories=categories, replenishable=replenishable
        )
        for item, (_, share, count) in zip(families, units, strict=True):
            lists.update(item.fit(events, options, (share, count)))
    return {
        "part": index,
        "units": describe(units),
        "lists": stage(plan["fit"], index, lists),
        "interactions": len(events.visitor),
        "read_s": round(read, 3),
        "seconds": round(time.monotonic() - started, 3),
    }


def stage(fit: str, part: int, lists: engine.Lists) -> int:
    """Write a part's lists under the fit's id, replacing what it wrote before."""
    from ..models import RecommendationList

    with transaction.atomic():
        RecommendationList.objects.filter(fit=fit, part=part).delete()
        return store.insert_lists(lists, fit=fit, part=part)


def finish(plan: Plan, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Switch the fit's lists in, once every part wrote them: in one transaction, each list
    served replaced by the fit's list of the same name, then published, and the fit recorded.

    The fit is abandoned (its lists deleted, the lists served left alone) when a part is
    missing, the parts read different interactions, a fit as of a later moment was switched
    in meanwhile, or some of its lists are gone (a later fit started and deleted them)."""
    from ..models import RecommendationList

    fit = plan["fit"]
    now = dt.datetime.fromisoformat(plan["now"])
    read = {result["interactions"] for result in results}
    with transaction.atomic():
        live_now = store.lock_live()
        staged = RecommendationList.objects.filter(fit=fit)
        reason, switched = None, 0
        if sorted(result["part"] for result in results) != list(range(len(plan["parts"]))):
            reason = "some of its parts did not report"
        elif len(read) > 1:
            reason = "its parts read different interactions"
        elif live_now is not None and live_now > now:
            reason = "the lists of a later fit were switched in meanwhile"
        elif staged.count() != sum(result["lists"] for result in results):
            reason = "some of its lists were deleted (a later fit started meanwhile)"
        if reason is None:
            names = list(staged.order_by().values_list("name", flat=True).distinct())
            RecommendationList.objects.filter(fit="", name__in=names).delete()
            switched = staged.update(fit="", part=0)
            store.mark_live(now)
        else:
            staged.delete()
    if reason is not None:
        logger.warning(
            "personalization: recommendation fit %s abandoned, the lists served stay: %s",
            fit,
            reason,
        )
        return {"fit": fit, "abandoned": reason}
    store.publish()
    interactions = read.pop() if read else 0
    coldstart.mark_fitted(now, interactions)
    result = {
        "fit": fit,
        "interactions": interactions,
        "lists": switched,
        "parts": len(plan["parts"]),
        "seconds": round(time.time() - plan["planned_at"], 3),
    }
    logger.info("personalization: recommendations recomputed: %s", result)
    result["part_results"] = sorted(results, key=lambda part: part["part"])
    return result


def run_here(plan: Plan) -> dict[str, Any]:
    """Every part of the plan in this process, one after another (reading the interactions
    once), then the switch."""
    try:
        results = []
        for index in range(len(plan["parts"])):
            try:
                results.append(run_part(plan, index))
            except Exception:
                log_failure(plan, index)
                raise
        return finish(plan, results)
    finally:
        snapshot.release()


def log_failure(plan: Plan, index: int, tries: int = 1) -> None:
    """The one line that says a part failed for good, and what that means."""
    logger.error(
        "personalization: part %d of %d (%s) of recommendation fit %s failed%s; the fit is "
        "abandoned and the lists served stay until the next fit",
        index + 1,
        len(plan["parts"]),
        describe(plan["parts"][index]),
        plan["fit"],
        f" {tries} times" if tries > 1 else "",
        exc_info=True,
    )


def discard_others(plan: Plan) -> int:
    """Delete the lists that other fits wrote and never switched in (a part failed for good,
    a worker died, or a later fit started): each fit cleans up after the ones before."""
    from ..models import RecommendationList

    deleted, _ = RecommendationList.objects.exclude(fit="").exclude(fit=plan["fit"]).delete()
    if deleted:
        logger.info("personalization: deleted %d lists of unfinished recommendation fits", deleted)
    return deleted
