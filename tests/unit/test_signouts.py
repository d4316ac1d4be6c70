"""Where signed-out dashboard sessions are kept (app.web.signouts): one suite over the SQLite
file and a real redis-server, as the async queue's backends are tested."""

from __future__ import annotations

import time

import pytest

from app.config import Config
from app.errors import BackendUnavailable
from app.web.signouts import RedisSignOuts, SQLiteSignOuts, open_sign_outs


@pytest.fixture(params=["sqlite", "redis"])
def sign_outs(request, tmp_path):
    if request.param == "sqlite":
        return SQLiteSignOuts(str(tmp_path / "signed-out.db"))
    return RedisSignOuts(request.getfixturevalue("redis_server").url)


def test_an_ended_session_stays_ended_and_others_do_not(sign_outs):
    assert not sign_outs.ended("a")
    sign_outs.end("a", time.time() + 60)
    assert sign_outs.ended("a")
    assert not sign_outs.ended("b")


def test_a_record_is_dropped_once_the_session_would_have_expired(sign_outs):
    sign_outs.end("old", time.time() - 1)
    sign_outs.end("new", time.time() + 60)  # the SQLite file prunes on each sign-out
    assert not sign_outs.ended("old") and sign_outs.ended("new")


def test_the_store_follows_the_async_queue(tmp_path):
    assert isinstance(open_sign_outs(Config(state_dir=str(tmp_path))), SQLiteSignOuts)
    assert isinstance(open_sign_outs(Config(state_dir=str(tmp_path), async_queue="redis://redis:6379/0")), RedisSignOuts)


def test_an_unreadable_store_is_a_503_never_a_valid_session(tmp_path):
    # A folder where the file should be: SQLite cannot open it.
    (tmp_path / "signed-out.db").mkdir()
    with pytest.raises(BackendUnavailable):
        SQLiteSignOuts(str(tmp_path / "signed-out.db")).ended("a")
    with pytest.raises(BackendUnavailable):
        RedisSignOuts("redis://127.0.0.1:1/0").ended("a")
