"""Run RedisStorage's Lua scripts so that touching a key not passed in KEYS fails.

Redis itself does not enforce the scripting contract that a script declares every key
it accesses: measured on Redis 7.0, a standalone server checks nothing, and a cluster
node only refuses a key of another slot than the declared ones, and only for a script
with a ``#!lua`` shebang (which Redis 6 cannot run). A key built inside the script
from the reactor's hash tag is in the right slot, so a cluster would not notice it
either. Hence this check: each script runs behind a prelude that asks the server which
arguments of each ``redis.call``/``redis.pcall`` are keys (``COMMAND GETKEYS``) and
raises unless each is one of ``KEYS``.
"""

from __future__ import annotations

import pytest

from reactor.storage import redis as redis_storage

__all__ = ["PRELUDE", "declared_keys_only"]

PRELUDE = """
local declared = {}
for _, key in ipairs(KEYS) do
  declared[key] = true
end
local function check(...)
  -- An error reply here means the command has no key arguments (TIME...).
  local keys = redis.pcall('COMMAND', 'GETKEYS', ...)
  if keys.err then
    return
  end
  for _, key in ipairs(keys) do
    if not declared[key] then
      error('undeclared key ' .. key .. ' (' .. tostring((...)) .. ')')
    end
  end
end
-- The global redis table is read-only; the script's own code sees this one instead.
local redis = setmetatable({
  call = function(...)
    check(...)
    return redis.call(...)
  end,
  pcall = function(...)
    check(...)
    return redis.pcall(...)
  end,
}, {__index = redis})
"""


def declared_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace every script of :mod:`reactor.storage.redis` by its checked version."""
    for name, value in vars(redis_storage).items():
        if isinstance(value, redis_storage._Script):
            monkeypatch.setattr(redis_storage, name, redis_storage._Script(PRELUDE + value.text))
