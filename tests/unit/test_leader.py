"""The autoscaler's locks: one holder per host (file lock), chosen again when the holder goes."""

from __future__ import annotations

import subprocess
import sys
import time

from app.config import Config
from app.runtime.leader import CRON_LEASE_SECONDS, FileLock, Leadership, RedisLease, autoscaler_leadership, cron_leadership


def test_one_file_lock_holder_at_a_time(tmp_path):
    path = str(tmp_path / "autoscaler.lock")
    first, second = FileLock(path), FileLock(path)
    assert first.hold() and first.hold()  # kept, round after round
    assert not second.hold()
    first.release()
    assert second.hold()
    assert not first.hold()
    second.release()


def test_the_lock_of_a_process_that_died_is_free(tmp_path):
    path = tmp_path / "autoscaler.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from app.runtime.leader import FileLock; import sys; assert FileLock({str(path)!r}).hold(); "
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        assert not FileLock(str(path)).hold()
    finally:
        holder.kill()
        holder.wait()
    assert FileLock(str(path)).hold()


class Refusing:
    def __init__(self):
        self.released = 0

    def hold(self) -> bool:
        return False

    def release(self) -> None:
        self.released += 1


def test_leadership_holds_all_locks_or_none(tmp_path):
    path = str(tmp_path / "autoscaler.lock")
    refusing = Refusing()
    assert not Leadership(FileLock(path), refusing).hold()
    assert FileLock(path).hold()  # the file lock was given back


def test_redis_lease_only_with_a_redis_queue(tmp_path):
    sqlite = autoscaler_leadership(Config(state_dir=str(tmp_path)))
    assert [type(lock) for lock in sqlite.locks] == [FileLock]
    assert sqlite.locks[0].path == str(tmp_path / "autoscaler.lock")
    on_redis = autoscaler_leadership(Config(state_dir=str(tmp_path), async_queue="redis://127.0.0.1:1/0", autoscaler_interval=2))
    # One lease for every gateway on every node: a file lock would only hold on its own host.
    assert [type(lock) for lock in on_redis.locks] == [RedisLease]
    assert on_redis.locks[0].ttl_ms == 6000


def test_the_cron_scheduler_has_a_lock_of_its_own_beside_the_autoscalers(tmp_path):
    config = Config(state_dir=str(tmp_path))
    # One process may lead both: two flocks on one file would keep out whichever came second.
    assert autoscaler_leadership(config).hold() and cron_leadership(config).hold()
    on_redis = Config(state_dir=str(tmp_path), async_queue="redis://127.0.0.1:1/0")
    cron, autoscaler = cron_leadership(on_redis).locks[0], autoscaler_leadership(on_redis).locks[0]
    assert isinstance(cron, RedisLease) and cron.key != autoscaler.key
    assert cron.ttl_ms == CRON_LEASE_SECONDS * 1000


def test_redis_lease_without_redis_does_not_lead():
    # Port 1 on loopback refuses at once: nobody can tell whether another gateway leads.
    assert not RedisLease("redis://127.0.0.1:1/0", "k", 5).hold()


def test_one_redis_lease_holder_among_gateways_until_it_goes(redis_server):
    first, second = (RedisLease(redis_server.url, "lease-test", 0.5) for _ in range(2))
    assert first.hold() and first.hold()  # renewed, round after round
    assert not second.hold()
    first.release()
    assert second.hold()
    assert not first.hold()
    # A holder that stops renewing (its gateway vanished) gives way once the lease expires.
    deadline = time.monotonic() + 5
    while not first.hold():
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.05)  # polling, with a bound
    assert not second.hold()
