"""Who runs the autoscaler and the cron scheduler: one process per cluster for each, chosen by
locks that free themselves.

``FileLock`` elects one gunicorn worker per host: an ``flock`` on a file in the state folder,
which the kernel releases when the holding process dies, however it dies. ``RedisLease`` elects
one gateway among several sharing a Redis server: a key with this process's token that expires
unless renewed, so a gateway that vanishes gives way after ``ttl`` seconds. ``Leadership`` holds
all of its locks or none. ``hold`` is called every round: it takes a free lock, renews a held
one, and answers whether this process leads now. With a Redis queue the lease alone decides: a
file lock would only keep two processes of one host apart, not two gateways on two nodes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from typing import Protocol

from app.config import Config

log = logging.getLogger(__name__)


class Lock(Protocol):
    def hold(self) -> bool:
        """Take or keep the lock; True while this process holds it. Never raises."""

    def release(self) -> None:
        """Give the lock up, if held."""


class FileLock:
    """An exclusive ``flock`` on ``path``, kept for as long as the process lives or until released."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    def hold(self) -> bool:
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot open the lock file %s: %s", self.path, exc)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # another process holds it
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


# Renew only our own lease, or take a free one: atomic in Redis, so two gateways never both win.
_HOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """A lease on the key ``key`` of the Redis server ``url`` names, for ``ttl`` seconds at a time."""

    def __init__(self, url: str, key: str, ttl: float):
        import redis  # only gateways with a Redis queue need the package

        self._redis = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        self._errors = (redis.RedisError, OSError)
        self._hold = self._redis.register_script(_HOLD)
        self._release = self._redis.register_script(_RELEASE)
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = uuid.uuid4().hex

    def hold(self) -> bool:
        try:
            return bool(self._hold(keys=[self.key], args=[self.token, self.ttl_ms]))
        except self._errors as exc:
            # Without Redis nobody can be sure to lead alone; another gateway may hold it.
            log.warning("cannot reach Redis for the lease %s: %s", self.key, exc)
            return False

    def release(self) -> None:
        try:
            self._release(keys=[self.key], args=[self.token])
        except self._errors:
            pass  # the lease expires by itself


class Leadership:
    """All of ``locks`` at once, taken in order; a process that cannot hold one gives up the rest."""

    def __init__(self, *locks: Lock):
        self.locks = locks

    def hold(self) -> bool:
        for lock in self.locks:
            if not lock.hold():
                self.release()
                return False
        return True

    def release(self) -> None:
        for lock in self.locks:
            lock.release()


def autoscaler_leadership(config: Config) -> Leadership:
    """The lock the autoscaler of a gateway with ``config`` must hold: when its async queue is on
    Redis, the cluster's lease there (renewed every round, so it outlives three missed rounds),
    which every gateway on every node shares; else the host's file lock in its state folder."""
    if config.async_queue.startswith(("redis://", "rediss://")):
        return Leadership(RedisLease(config.async_queue, "faas-swarm-py:autoscaler", 3 * config.autoscaler_interval))
    return Leadership(FileLock(os.path.join(config.state_dir, "autoscaler.lock")))


# The cron scheduler's rounds are a second apart, but one may wait on Docker for seconds: a lease
# this long is not lost in a slow round, and another gateway takes over this soon after one dies.
CRON_LEASE_SECONDS = 15.0


def cron_leadership(config: Config) -> Leadership:
    """The lock the cron scheduler (``app.queue.cron``) of a gateway with ``config`` must
    hold, chosen as the autoscaler's is: a Redis lease with a Redis queue, else a file lock.

    Its own lock, not the autoscaler's: the autoscaler can be switched off while cron functions
    must still run, a flock taken twice in one process (by two loops) would keep one of them out,
    and each loop gives its lock up when it stops.
    """
    if config.async_queue.startswith(("redis://", "rediss://")):
        return Leadership(RedisLease(config.async_queue, "faas-swarm-py:cron", CRON_LEASE_SECONDS))
    return Leadership(FileLock(os.path.join(config.state_dir, "cron.lock")))
