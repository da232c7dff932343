"""The login throttle's counts in Redis: each attempt counted before its password is checked,
refused or held as ``domain.admit_attempt`` says (docs/ARCHITECTURE.md, "Throttling logins")."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

import redis.asyncio as redis
import structlog
from prometheus_client import Counter

from user_service import domain

log = structlog.get_logger(__name__)

# Atomic steps the throttle needs beyond one command (redis-py runs them with EVALSHA).
# A turn of the account's password checks: the next free one, if it comes within max_wait_ms
# (then booked, the following one spacing_ms later); else minus the wait, and nothing booked.
_TAKE_TURN = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local turn = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local wait = turn - now
if wait > tonumber(ARGV[2]) then return -wait end
redis.call('SET', KEYS[1], turn + tonumber(ARGV[1]), 'PX', ARGV[3])
return wait
"""
# Give back an attempt counted in advance, on keys that still exist (a decrement would
# otherwise create a key of -1 that never expires).
_REFUND = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
"""
KNOWN_IPS_TTL_S = 30 * 24 * 3600
ACCOUNTS_UNDER_ATTACK = Counter(
    "login_accounts_under_attack_total",
    "Accounts whose failed logins from many addresses reached the point where their password "
    "checks are spaced (a distributed guessing attack).",
)
LOGINS_THROTTLED = Counter(
    "login_attempts_throttled_total",
    "Login attempts refused or held by the throttle, by what held them.",
    ["scope"],
)


@dataclass
class Attempt:
    """One login attempt, counted before its password is checked."""

    email: str
    ip: str
    counted: bool = True
    # This attempt's place in each count (1: the first): the one that reaches a limit locks it.
    places: dict[str, int] = field(default_factory=dict)


class LoginThrottle:
    """Failed logins counted in Redis per (account, client address), per address, and per
    account; ``domain.admit_attempt`` decides from the counts (docs/ARCHITECTURE.md,
    "Throttling logins").

    An attempt is counted before its password is checked, in every count (one atomic
    increment each, then the comparison), so parallel guesses all count, and all count for the
    account guessed at from many addresses too; a right password gives its counts back.

    If Redis is unreachable the throttle lets logins through and says so in the log:
    a Redis outage must not lock every customer out.
    """

    def __init__(self, client: redis.Redis, limits: domain.ThrottleLimits) -> None:
        self.client = client
        self.limits = limits
        self._take_turn = client.register_script(_TAKE_TURN)
        self._refund = client.register_script(_REFUND)

    @staticmethod
    def keys(email: str, ip: str) -> dict[str, str]:
        """Where each count lives. An account is named by a digest of its e-mail: no address
        in Redis keys (nor in the spans that name them)."""
        account = hashlib.sha256(domain.normalise_email(email).encode()).hexdigest()[:32]
        return {
            "account_ip": f"login-failures:account-ip:{account}:{ip}",
            "ip": f"login-failures:ip:{ip}",
            "account": f"login-failures:account:{account}",
            "turn": f"login-turn:{account}",
            "known_ips": f"login-known-ips:{account}",
        }

    async def reserve(self, email: str, ip: str) -> Attempt:
        """Count this attempt, and refuse it (TooManyAttempts) or hold it for the account's
        turn as the rules say."""
        keys = self.keys(email, ip)
        window = self.limits.window_s
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for kind in ("account_ip", "ip", "account"):
                    pipe.incr(keys[kind])
                    pipe.expire(keys[kind], window, nx=True)
                    pipe.ttl(keys[kind])
                pipe.sismember(keys["known_ips"], ip)
                values = await pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
            return Attempt(email, ip, counted=False)
        places = {"account_ip": int(values[0]), "ip": int(values[3]), "account": int(values[6])}
        counts = domain.AttemptCounts(
            account_ip=domain.FailureCount(places["account_ip"], int(values[2])),
            ip=domain.FailureCount(places["ip"], int(values[5])),
            account_failures=places["account"] - 1,  # the attempts before this one
            known_ip=bool(values[9]),
        )
        try:
            spacing = domain.admit_attempt(counts, self.limits)
            if spacing:
                await self._wait_turn(keys["turn"], spacing)
        except domain.TooManyAttempts:
            await self._give_back(keys, "account_ip", "ip", "account")
            raise
        if places["account"] == self.limits.slow_after + 1:  # once per account and window
            ACCOUNTS_UNDER_ATTACK.inc()
            log.warning("login_account_under_attack", failures=self.limits.slow_after)
        return Attempt(email, ip, places=places)

    async def _wait_turn(self, key: str, spacing_s: float) -> None:
        max_wait_ms = int(self.limits.max_wait_s * 1000)
        ttl_ms = int(self.limits.window_s * 1000)
        try:
            wait_ms = int(
                await self._take_turn([key], [int(spacing_s * 1000), max_wait_ms, ttl_ms])
            )
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))
            return
        if wait_ms < 0:
            LOGINS_THROTTLED.labels("account").inc()
            raise domain.turn_refused(-wait_ms / 1000)
        if wait_ms:
            LOGINS_THROTTLED.labels("account_wait").inc()
            await asyncio.sleep(wait_ms / 1000)

    async def _give_back(self, keys: dict[str, str], *kinds: str) -> None:
        try:
            await self._refund([keys[kind] for kind in kinds])
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))

    async def failed(self, attempt: Attempt) -> None:
        """The password was wrong: the attempt stays counted, and a count this attempt brought
        to its limit is locked, longer each time (once per crossing, however many attempts
        were under way)."""
        if not attempt.counted:
            return
        keys = self.keys(attempt.email, attempt.ip)
        limits = {"account_ip": self.limits.per_account_ip, "ip": self.limits.per_ip}
        try:
            for kind, limit in limits.items():
                if attempt.places.get(kind) == limit:
                    await self._lock(keys[kind])
                    LOGINS_THROTTLED.labels(kind).inc()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))

    async def _lock(self, key: str) -> None:
        strikes_key = f"{key}:strikes"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(strikes_key)
            pipe.expire(strikes_key, self.limits.lockout_cap_s)
            strikes, _ = await pipe.execute()
        await self.client.expire(key, domain.lockout_s(int(strikes), self.limits))

    async def succeeded(self, attempt: Attempt) -> None:
        """The right password: its count goes back, what this address got wrong for this
        account is forgotten (not what it got wrong for others), and the address is one the
        account is known to be opened from."""
        if not attempt.counted:
            return
        keys = self.keys(attempt.email, attempt.ip)
        await self._give_back(keys, "ip", "account")
        await self.forgive(attempt.email, attempt.ip)

    async def forgive(self, email: str, ip: str) -> None:
        """What ``ip`` got wrong for this account is forgotten, and the account is known to be
        opened from it (a right password, or a password reset followed from there)."""
        keys = self.keys(email, ip)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(keys["account_ip"])
                pipe.sadd(keys["known_ips"], ip)
                pipe.expire(keys["known_ips"], KNOWN_IPS_TTL_S)
                await pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))

    async def forget(self, email: str) -> None:
        """An account deleted: nothing of it (its addresses) stays in Redis."""
        keys = self.keys(email, "-")
        try:
            await self.client.delete(keys["account"], keys["turn"], keys["known_ips"])
        except redis.RedisError as exc:
            log.warning("login_throttle_unavailable", error=repr(exc))


class Allowances:
    """How often something may be asked for (a verification e-mail, a password reset link),
    counted in Redis per key over a fixed window: one atomic increment, then the comparison,
    so requests sent in parallel all count. If Redis is unreachable, what is asked is allowed
    (and said in the log): the links are signed and expire whatever the count."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @staticmethod
    def key(kind: str, who: str) -> str:
        """``who`` (an e-mail, an address) by a digest: nothing personal in the key."""
        return f"allowance:{kind}:{hashlib.sha256(who.encode()).hexdigest()[:32]}"

    async def take(self, key: str, limit: int, window_s: int) -> int | None:
        """Count one use under ``key``: None while within ``limit`` per ``window_s``, else the
        seconds until the window ends."""
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s, nx=True)
                pipe.ttl(key)
                used, _, ttl = await pipe.execute()
        except redis.RedisError as exc:
            log.warning("allowance_unavailable", error=repr(exc))
            return None
        return None if int(used) <= limit else max(int(ttl), 1)
