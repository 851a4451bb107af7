"""The read-through cache's rules, on a family of its own (the apps' families are tested where they live)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings

from accounts.tests.support import CACHE_DOWN
from core import read_through
from core.read_through import ReadThrough


class Table:
    """A stand-in for the database: rows by id, and the loads it answered."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.loads: list[str] = []
        self.batch_loads: list[list[str]] = []

    def load(self, ident: str) -> dict[str, Any] | None:
        self.loads.append(ident)
        return self.rows.get(ident)

    def load_many(self, idents: list[str]) -> dict[str, dict[str, Any]]:
        self.batch_loads.append(sorted(idents))
        return {ident: self.rows[ident] for ident in idents if ident in self.rows}


pytestmark = pytest.mark.django_db(transaction=True)  # writes wait for real commits (`on_commit`)


@pytest.fixture
def table() -> Table:
    return Table()


@pytest.fixture
def family(table: Table) -> Iterator[ReadThrough[dict[str, Any]]]:
    made: ReadThrough[dict[str, Any]] = ReadThrough(
        "test:rt",
        load=table.load,
        load_many=table.load_many,
        ttl=lambda value: 7 if value.get("short") else 600,
        owner=lambda value: value["owner"],
        valid=lambda cached: isinstance(cached, dict) and "owner" in cached,
    )
    yield made
    ReadThrough.families.remove(made)


def test_a_miss_loads_once_then_the_cache_answers(family, table):
    table.rows["1"] = {"owner": "u1", "v": 1}

    assert family.get("1") == {"owner": "u1", "v": 1}
    assert family.get("1") == {"owner": "u1", "v": 1}
    assert table.loads == ["1"]
    assert cache.get("test:rt:1") == {"owner": "u1", "v": 1}


def test_nothing_in_the_database_is_none_and_is_not_cached(family, table):
    assert family.get("missing") is None
    assert family.get("missing") is None
    assert table.loads == ["missing", "missing"]


def test_owner_scope_hides_another_users_entry_warm_or_cold(family, table):
    table.rows["1"] = {"owner": "u1"}

    assert family.get("1", owner="u2") is None  # cold
    assert family.get("1", owner="u2") is None  # warm
    assert family.get("1", owner="u1") == {"owner": "u1"}


def test_a_fill_that_read_before_a_change_cannot_overwrite_it(family, table):
    table.rows["1"] = {"owner": "u1", "v": "old"}  # what a reader's miss loads...
    family.put_after_commit({"1": {"owner": "u1", "v": "new"}})  # ...while a change commits and writes

    assert family.fetch("1", cache_up=True) == {"owner": "u1", "v": "old"}  # the reader's late fill
    assert family.get("1") == {"owner": "u1", "v": "new"}  # lost: a fill only adds


def test_writes_wait_for_the_commit_and_a_rollback_writes_nothing(family, table):
    table.rows["1"] = {"owner": "u1", "v": 1}
    with transaction.atomic():
        family.write_after_commit("1")
        assert cache.get(family.key("1")) is None
    assert cache.get(family.key("1")) == {"owner": "u1", "v": 1}

    table.rows["1"] = {"owner": "u1", "v": 2}

    def change_that_fails() -> None:
        with transaction.atomic():
            family.write_after_commit("1")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert cache.get(family.key("1")) == {"owner": "u1", "v": 1}


def test_a_gone_row_is_dropped_and_many_are_loaded_in_one_go(family, table):
    table.rows.update({"1": {"owner": "u1"}, "2": {"owner": "u2"}})
    family.get("1")
    family.get("2")
    del table.rows["2"]

    family.write_after_commit("1", "2", "3")

    assert table.batch_loads == [["1", "2", "3"]]
    assert cache.get(family.key("1")) == {"owner": "u1"}
    assert cache.get(family.key("2")) is None


def test_each_value_gets_its_own_lifetime(family, table, settings):
    if not settings.REDIS_URL:
        pytest.skip("key lifetimes are read from Redis (set REDIS_URL)")
    family.put_after_commit({"1": {"owner": "u1", "short": True}, "2": {"owner": "u2"}})

    assert 0 < cache.ttl(family.key("1")) <= 7
    assert 7 < cache.ttl(family.key("2")) <= 600


def test_a_malformed_entry_is_reloaded_and_replaced(family, table):
    table.rows["1"] = {"owner": "u1"}
    cache.set(family.key("1"), ["written", "by", "an", "older", "release"], 600)

    assert family.get("1") == {"owner": "u1"}
    assert cache.get(family.key("1")) == {"owner": "u1"}


def test_a_cache_that_errors_is_a_miss_and_a_lost_write_is_retried(family, table):
    table.rows["1"] = {"owner": "u1", "v": "old"}
    family.get("1")

    table.rows["1"] = {"owner": "u1", "v": "new"}
    with override_settings(CACHES=CACHE_DOWN):
        assert family.get("1") == {"owner": "u1", "v": "new"}  # the database answers
        family.write_after_commit("1")  # the write is lost...
    assert family.pending == {"1"}
    assert read_through.pending_writes() >= 1
    assert cache.get(family.key("1"))["v"] == "old"  # ...and the old entry survived the outage

    assert family.get("1") == {"owner": "u1", "v": "new"}  # the first read once it answers retries
    assert family.pending == set()


def test_read_many_reads_several_families_in_one_call(family, table):
    table.rows["1"] = {"owner": "u1"}
    family.get("1")

    found = read_through.read_many([family.key("1"), family.key("absent")])

    assert found == {family.key("1"): {"owner": "u1"}}
    with override_settings(CACHES=CACHE_DOWN):
        assert read_through.read_many([family.key("1")]) is read_through.FAILED
