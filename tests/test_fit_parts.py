"""The nightly fit in parts: the same lists as one fit, in this process or as a Celery chord
(eager here; tests/test_worker.py sends it to a real worker); a failing part leaves the lists
served alone; what unfinished fits wrote is cleaned up; serving never sees half a fit."""

from __future__ import annotations

import datetime as dt
import io
import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from personalization import jobs
from personalization.models import JobRun, ProductInteraction, RecommendationList
from personalization.products import DefaultProductAdapter
from personalization.recommendations import engine, parts, precompute, snapshot, store

pytestmark = pytest.mark.django_db

COUNTRIES = ["", "DE", "DE", "GB", "FR"]
KINDS = ["view"] * 6 + ["cart", "cart", "purchase"]


class ReplenishingAdapter(DefaultProductAdapter):
    """Products with an even primary key are bought again (coffee, filters)."""

    def is_replenishable(self, product: Any) -> bool:
        return product.pk % 2 == 0


@pytest.fixture(autouse=True)
def _shop(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_ADAPTER": "tests.test_fit_parts.ReplenishingAdapter",
    }
    snapshot.release()
    yield
    snapshot.release()


@pytest.fixture
def small_blocks(monkeypatch):
    """Similarity blocks of a few products each, so that a family's shares hold several."""
    monkeypatch.setattr(engine, "SIMILARITY_BLOCK_ENTRIES", 400)


def use_parts(settings, value: int | str | None) -> None:
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RECOMMENDATION_FIT_PARTS": value}


@pytest.fixture
def shop(make_product) -> dt.datetime:
    return make_shop(make_product)


def make_shop(make_product: Any) -> dt.datetime:
    """Forty products in four categories and 3,000 interactions of 300 visitors over 60 days,
    some in the same second (ties broken by id); returns the moment to fit as of."""
    rng = random.Random(5)
    products = [make_product(category=f"shelf-{n % 4}") for n in range(40)]
    now = timezone.now().replace(microsecond=0)
    rows = []
    for n in range(3000):
        at = now - dt.timedelta(seconds=rng.randrange(1, 60 * 86400))
        if n % 10 == 0 and rows:
            at = rows[-1].created_at
        rows.append(
            ProductInteraction(
                visitor_id=f"visitor-{int(rng.paretovariate(1.0)) % 300}",
                product_id=str(products[int(rng.paretovariate(0.7)) % 40].pk),
                kind=rng.choice(KINDS),
                country=rng.choice(COUNTRIES),
                created_at=at,
            )
        )
    ProductInteraction.objects.bulk_create(rows)
    # Newer than the fit's moment: no part sees it.
    ProductInteraction.objects.create(
        visitor_id="late", product_id=str(products[0].pk), kind="purchase",
        created_at=now + dt.timedelta(seconds=5),
    )  # fmt: skip
    return now


def served() -> dict[tuple[str, str], list[list[Any]]]:
    return {(row.name, row.key): row.items for row in RecommendationList.objects.filter(fit="")}


def one_fit(now: dt.datetime) -> dict[tuple[str, str], list[list[Any]]]:
    """The lists of ``engine.fit`` on the same interactions, as they are stored."""
    since = now - dt.timedelta(days=90)
    categories, replenishable = snapshot.catalog()
    lists = engine.fit(
        precompute.interactions(since, now),
        now=now,
        categories=categories,
        replenishable=replenishable,
    )
    return {
        key: [[product, round(score, 6)] for product, score in ranked]
        for key, ranked in lists.items()
    }


@pytest.fixture
def celery_tasks() -> Iterator[list[str]]:
    """The names of the Celery tasks that ran (eagerly, in this process)."""
    signals = pytest.importorskip("celery.signals")
    task_postrun = signals.task_postrun

    ran: list[str] = []

    def record(sender: Any = None, **kwargs: Any) -> None:
        ran.append(sender.name)

    task_postrun.connect(record, weak=False)
    yield ran
    task_postrun.disconnect(record)


# The same lists ------------------------------------------------------------------------------
@pytest.mark.parametrize("split", [None, 1, 3, 12, "auto"])
def test_the_parts_give_exactly_the_lists_of_one_fit(shop, small_blocks, settings, split):
    use_parts(settings, split)
    result = precompute.recompute_all(shop)
    expected = one_fit(shop)
    names = {name for name, _ in expected}
    assert {"popular_category", "replenishment", "viewed_together", "item_model"} <= names
    assert served() == expected
    assert result["lists"] == len(expected)
    assert result["interactions"] == 3000
    assert result["parts"] == len(parts.split(split))
    assert not RecommendationList.objects.exclude(fit="").exists()


def test_with_celery_the_parts_run_as_a_chord_of_tasks(shop, settings, celery_tasks):
    pytest.importorskip("celery")
    use_parts(settings, 4)
    result = precompute.recompute_all(shop)
    assert celery_tasks.count("personalization.fit_recommendations_part") == 4
    assert celery_tasks[-1] == "personalization.finish_recommendations_fit"
    assert result["parts"] == 4
    assert served() == one_fit(shop)


def test_without_celery_the_same_parts_run_in_this_process(
    shop, small_blocks, settings, no_celery_app
):
    use_parts(settings, 5)
    result = precompute.recompute_all(shop)
    assert result["parts"] == 5
    assert [part["part"] for part in result["part_results"]] == [0, 1, 2, 3, 4]
    # The interactions were read once for the five parts.
    assert [part["read_s"] > 0 for part in result["part_results"]] == [True] + [False] * 4
    assert served() == one_fit(shop)


@pytest.fixture
def broker_down():
    """The shop's Celery app sends tasks to a broker nobody listens on."""
    celery = pytest.importorskip("celery", reason="Celery is not installed (an optional extra)")
    from celery import _state

    app = celery.Celery("broker-down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.task_always_eager = False
    saved = _state._tls.current_app
    app.set_current()
    jobs.celery_app.cache_clear()
    jobs._broker["down_until"] = 0.0
    yield app
    _state._set_current_app(saved)
    jobs.celery_app.cache_clear()
    jobs._broker["down_until"] = 0.0
    jobs._logged.clear()


def test_when_the_broker_is_down_the_parts_run_in_this_process(shop, settings, broker_down, caplog):
    use_parts(settings, 3)
    result = precompute.recompute_all(shop)
    assert result["parts"] == 3 and "queued" not in result
    assert served() == one_fit(shop)
    assert "the Celery broker did not take job 'recommendations'" in caplog.text


def test_with_the_setting_off_no_task_runs(shop, settings, celery_tasks):
    pytest.importorskip("celery")
    use_parts(settings, None)
    assert precompute.recompute_all(shop)["parts"] == 1
    assert celery_tasks == []
    assert served() == one_fit(shop)


def test_the_jobs_command_fits_in_parts_without_celery(shop, settings, no_celery_app):
    use_parts(settings, 3)
    call_command("personalization_jobs", "recommendations", stdout=io.StringIO())
    run = JobRun.objects.get(name="recommendations")
    assert run.status == JobRun.OK
    assert run.result["parts"] == 3 and run.result["lists"] == len(served())


# Failures -----------------------------------------------------------------------------------
def broken(events: engine.Events, options: engine.Options) -> engine.Lists:
    broken.calls += 1  # type: ignore[attr-defined]
    raise RuntimeError("the disk is full")


@pytest.fixture
def add_a_family_that_fails(monkeypatch):
    """Adds to the registry a family whose every fit raises; ``broken.calls`` counts them."""
    broken.calls = 0  # type: ignore[attr-defined]

    def add() -> Any:
        failing = engine.Family("broken", f"{__name__}.broken")
        monkeypatch.setattr(engine, "FAMILIES", (*engine.FAMILIES, failing))
        return broken

    return add


def errors(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "personalization" and record.levelno >= logging.ERROR
    ]


@pytest.fixture
def eager_retries():
    """Eager tasks that retry: Celery hands an eager task's retry up as an exception while
    eager tasks propagate their exceptions (the suite's setting), and tries again otherwise."""
    from tests.celery_app import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


def test_a_failing_part_is_retried_then_the_lists_served_stay(
    shop, settings, caplog, add_a_family_that_fails, eager_retries
):
    from celery.signals import task_retry

    precompute.recompute_all(shop - dt.timedelta(days=1))
    before = served()
    bestsellers = store.SharedStore().get("bestsellers")
    assert bestsellers

    add_a_family_that_fails()
    use_parts(settings, "auto")
    caplog.set_level(logging.INFO, logger="personalization")
    retried: list[str] = []

    def record(request: Any = None, **kwargs: Any) -> None:
        retried.append(parts.describe(request.args[0]["parts"][request.args[1]]))

    task_retry.connect(record, weak=False)
    try:
        with pytest.raises(RuntimeError, match="the disk is full"):
            jobs.run("recommendations")
    finally:
        task_retry.disconnect(record)
    assert retried.count("broken") == 3  # tried, then retried three times
    assert served() == before
    store.forget_local()
    assert store.SharedStore().get("bestsellers") == bestsellers
    failed = [message for message in errors(caplog) if "(broken) of recommendation fit" in message]
    assert len(failed) == 1, failed
    assert "failed 4 times" in failed[0] and "the lists served stay" in failed[0]
    run = JobRun.objects.get(name="recommendations")
    assert run.status == JobRun.FAILED and "the disk is full" in run.error
    # The parts that did finish left their lists aside, never served.
    assert RecommendationList.objects.exclude(fit="").exists()


def test_in_this_process_a_failing_part_is_logged_once_and_nothing_is_switched(
    shop, settings, caplog, no_celery_app, add_a_family_that_fails
):
    failing = add_a_family_that_fails()
    use_parts(settings, 2)
    caplog.set_level(logging.INFO, logger="personalization")
    with pytest.raises(RuntimeError, match="the disk is full"):
        precompute.recompute_all(shop)
    assert failing.calls == 1
    assert served() == {}
    [failed] = errors(caplog)
    assert "failed; the fit is abandoned" in failed


def test_the_next_fit_deletes_what_unfinished_fits_wrote(shop, settings, caplog):
    use_parts(settings, 3)
    abandoned = parts.plan(shop - dt.timedelta(hours=2), parts=3)
    parts.run_part(abandoned, 0)
    parts.run_part(abandoned, 2)
    RecommendationList.objects.create(name="bestsellers", key="", items=[["x", 1.0]], fit="0ld")
    stale = RecommendationList.objects.exclude(fit="").count()
    assert stale > 1
    caplog.set_level(logging.INFO, logger="personalization")
    snapshot.release()
    precompute.recompute_all(shop)
    assert not RecommendationList.objects.exclude(fit="").exists()
    assert f"deleted {stale} lists of unfinished recommendation fits" in caplog.text
    assert served() == one_fit(shop)


# The switch ---------------------------------------------------------------------------------
def test_serving_sees_the_new_lists_only_once_every_part_is_done(shop, settings):
    old = {("bestsellers", ""): [("old", 1.0)], ("viewed_together", "a"): [("old", 1.0)]}
    store.save_lists(old)
    plan = parts.plan(shop, parts=4)
    results = [parts.run_part(plan, index) for index in range(4)]
    assert RecommendationList.objects.filter(fit=plan["fit"]).count() == sum(
        result["lists"] for result in results
    )
    store.forget_local()
    assert store.SharedStore().get("bestsellers") == [("old", 1.0)]
    parts.finish(plan, results)
    bestsellers = [tuple(item) for item in one_fit(shop)[("bestsellers", "")]]
    assert store.SharedStore().get("bestsellers") == bestsellers
    assert served() == one_fit(shop)  # the old list of "viewed_together" went with its name


def test_a_part_that_runs_twice_writes_its_lists_once(shop):
    plan = parts.plan(shop, parts=2)
    first = parts.run_part(plan, 1)
    again = parts.run_part(plan, 1)
    assert first["lists"] == again["lists"] > 0
    assert RecommendationList.objects.filter(fit=plan["fit"]).count() == first["lists"]


def test_an_older_fit_that_finishes_last_is_abandoned(shop, caplog):
    older, newer = parts.plan(shop - dt.timedelta(hours=1)), parts.plan(shop)
    older_results = [parts.run_part(older, 0)]
    snapshot.release()
    parts.finish(newer, [parts.run_part(newer, 0)])
    switched = served()
    result = parts.finish(older, older_results)
    assert result["abandoned"] == "the lists of a later fit were switched in meanwhile"
    assert served() == switched
    assert not RecommendationList.objects.exclude(fit="").exists()
    assert "abandoned, the lists served stay" in caplog.text


def test_a_fit_whose_lists_a_later_fit_deleted_is_abandoned(shop):
    plan = parts.plan(shop, parts=2)
    results = [parts.run_part(plan, index) for index in range(2)]
    parts.discard_others(parts.plan(shop))  # a later fit starts
    result = parts.finish(plan, results)
    assert result["abandoned"].startswith("some of its lists were deleted")
    assert served() == {}


def test_parts_that_read_different_interactions_are_not_switched_in(shop):
    plan = parts.plan(shop, parts=2)
    first = parts.run_part(plan, 0)
    second = {**parts.run_part(plan, 1), "interactions": first["interactions"] - 1}
    result = parts.finish(plan, [first, second])
    assert result["abandoned"] == "its parts read different interactions"
    assert served() == {}


def test_interactions_of_the_same_moment_count_in_the_order_they_were_written(
    make_product, settings
):
    first, second = make_product(), make_product()
    at = timezone.now() - dt.timedelta(days=1)
    ProductInteraction.objects.bulk_create(
        ProductInteraction(visitor_id=visitor, product_id=str(product.pk), kind="purchase",
                           created_at=at)
        for visitor, product in (("v1", second), ("v2", first))
    )  # fmt: skip
    use_parts(settings, 3)
    precompute.recompute_all()
    # Equal buyers: the tie goes to the product seen first.
    assert [product for product, _ in served()[("bestsellers", "")]] == [
        str(second.pk),
        str(first.pk),
    ]


def test_the_snapshot_leaves_out_what_was_written_after_the_plan(shop):
    plan = parts.plan(shop)
    ProductInteraction.objects.create(
        visitor_id="written-meanwhile", product_id="1", kind="view",
        created_at=shop - dt.timedelta(minutes=1),
    )  # fmt: skip
    assert len(snapshot.events(plan).visitor) == 3000


# The plan -----------------------------------------------------------------------------------
def test_auto_gives_each_family_a_part_and_splits_the_costly_similarity_family(monkeypatch):
    costly = engine.Family("costly", f"{__name__}.countries", cost=1.0)
    similar = engine.Family("similar", f"{__name__}.countries", blocks=True, cost=2.5)
    cheap = engine.Family("cheap", f"{__name__}.countries", blocks=True, cost=0.5)
    monkeypatch.setattr(engine, "FAMILIES", (similar, costly, cheap))
    described = sorted(parts.describe(units) for units in parts.split("auto"))
    assert described == ["cheap", "costly", "similar 1/3", "similar 2/3", "similar 3/3"]
    for family in engine.FAMILIES:
        if not family.blocks:
            assert family.name in described


@pytest.mark.parametrize("count", [1, 2, 3, 7, 8, 20])
def test_a_number_of_parts_covers_every_family_and_share_once(count):
    split = parts.split(count)
    assert len(split) == count
    units = [tuple(unit) for part in split for unit in part]
    assert len(units) == len(set(units))
    for family in engine.FAMILIES:
        shares = sorted(index for name, index, _ in units if name == family.name)
        counts = {total for name, _, total in units if name == family.name}
        assert len(counts) == 1
        assert shares == list(range(counts.pop()))


def countries(events: engine.Events, options: engine.Options) -> engine.Lists:
    return {("countries", ""): [("seen", float(len(events.countries)))]}


def test_a_family_added_to_the_registry_is_fitted_and_gets_a_part(shop, settings, monkeypatch):
    family = engine.Family("countries", f"{__name__}.countries")
    monkeypatch.setattr(engine, "FAMILIES", (*engine.FAMILIES, family))
    assert [["countries", 0, 1]] in parts.split("auto")
    use_parts(settings, "auto")
    precompute.recompute_all(shop)
    assert served()[("countries", "")] == [["seen", 4.0]]
    assert engine.fit(precompute.interactions(shop - dt.timedelta(days=90), shop), now=shop)[
        ("countries", "")
    ] == [("seen", 4.0)]


@pytest.mark.parametrize("value", [0.5, -1, "all", True])
def test_a_wrong_number_of_parts_is_a_clear_error(value):
    with pytest.raises(ValueError, match="RECOMMENDATION_FIT_PARTS"):
        parts.split(value)


def test_the_admin_shows_the_lists_served_only(admin_client):
    store.save_lists({("viewed_together", "served-key"): [("p1", 1.0)]})
    RecommendationList.objects.create(
        name="viewed_together", key="aside-key", items=[["p2", 1.0]], fit="unfinished"
    )
    page = admin_client.get("/admin/personalization/recommendationlist/").content.decode()
    assert "served-key" in page and "aside-key" not in page
