"""homelab.taskbroker.SQLiteORM: asks the database only after a write (issue 18)."""

from __future__ import annotations

import pytest
from django_q.brokers import get_broker
from django_q.conf import Conf

from homelab.taskbroker import SQLiteORM


@pytest.fixture
def broker(monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 0)
    return SQLiteORM(list_key="taskbroker-test")


def _queries(broker: SQLiteORM, monkeypatch) -> list[int]:
    calls: list[int] = []
    original = type(broker).__mro__[1].dequeue

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(type(broker).__mro__[1], "dequeue", counting)
    return calls


@pytest.mark.django_db
def test_the_embedded_default_uses_it():
    assert isinstance(get_broker(), SQLiteORM)


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_another_connection_is_seen_at_the_next_look(broker, monkeypatch):
    calls = _queries(broker, monkeypatch)
    assert broker.dequeue() is None  # the first look always asks the database
    assert len(calls) == 1
    for _ in range(5):
        assert broker.dequeue() is None
    assert len(calls) == 1, "nothing was written: the database must not be asked again"

    SQLiteORM(list_key="taskbroker-test").enqueue("payload")
    tasks = broker.dequeue()
    assert len(calls) == 2
    assert [payload for _, payload in tasks] == ["payload"]


@pytest.mark.django_db(transaction=True)
def test_the_database_is_asked_at_least_every_full_check(broker, monkeypatch):
    calls = _queries(broker, monkeypatch)
    broker.dequeue()
    broker._queried_at -= 31
    broker.dequeue()
    assert len(calls) == 2
