"""Lua scripts of :class:`~reactor.storage.RedisStorage`: each one is one atomic round trip.

Every script's header says what each ``KEYS[i]`` and ``ARGV[i]`` is; the script copies
them into named locals first. Replies that are not plain data are tagged tables
(``{'ok', ...}``, ``{'conflict', ...}``) that Python matches on.

Keys the script only discovers while running (the execution an index entry points at,
the index of the status an execution had) are built from key affixes passed in ARGV,
which :class:`~reactor.storage._keys.Keys` derives from its templates. In the cluster
layout those affixes carry the reactor's hash tag, so such a key is always in the slot
of the keys the call declares, which Redis Cluster allows; every key known before the
call (the reactor's status indexes included) is declared in KEYS.

An execution hash has the fields ``reactor``, ``status``, ``version``, ``body``,
``correlation_ids`` (JSON array), ``created_at``, ``updated_at``, ``write_token`` (the
token of the write that stored this version) and, when set, ``deadline``,
``lease_expires`` and ``reason``. Numbers are stored as Python's ``repr`` (or ``%.17g``
when a script computes them) so they read back exactly. An early payload is a hash of
``payload`` and ``token``.

Leases are stamped in server time (``TIME``): a caller's clock never decides whether a
lease ran out. Every script does bounded work whatever the number of keys: the longest,
``LIST``, reads a window of each index whose size the caller bounds.

Lua compares strings with the server's locale; where the order must be Redis's own
(sorted-set members, byte by byte), scripts compare bytes themselves.
"""

from __future__ import annotations

__all__ = [
    "EXPIRED_LEASES",
    "EXPIRED_LEASES_SCORED",
    "LIST",
    "LOAD_BY_CORRELATION",
    "PUT_EARLY",
    "RESERVE_IDEMPOTENCY_KEY",
    "TAKE_EARLY",
    "TOUCH",
    "WRITE",
]

WRITE = """
-- Compare-and-set store of one execution envelope, with its indexes, in one step.
--
-- KEYS[1]   execution hash
-- KEYS[2]   correlation index of the reactor (hash: correlation id -> execution id)
-- KEYS[3]   deadline schedule (zset)
-- KEYS[4]   lease schedule (zset)
-- KEYS[4+i] early-payload key of the i-th correlation id listed in the envelope
--           (none when the new status is finished: it holds no correlation id)
-- ARGV[1]   a JSON array of what every write of the reactor sends alike (the client
--           encodes it once per reactor):
--   [1]   execution key head  } execution key of id X = head .. X .. tail
--   [2]   execution key tail  }
--   [3]   status index head   } status index of status S = head .. S .. tail
--   [4]   status index tail   }
--   [5]   reactor status index head  } the same, restricted to the reactor
--   [6]   reactor status index tail  }
--   [7]   retention in milliseconds (expiry of a finished execution)
--   [8]   the running status value
-- ARGV[2]   a JSON array of this write's values (one argument: packing dozens of
--           arguments costs the client more than the server spends decoding one):
--   [1]   execution id
--   [2]   expected version (0: the execution must not exist)
--   [3]   now: the new updated_at
--   [4]   created_at to use if the execution does not exist yet
--   [5]   true if the new status is finished
--   [6]   deadline schedule score, "" to leave the deadline schedule
--   [7]   lease length in seconds: the lease ends that long after the server's TIME;
--         "" for no lease (and to leave the lease schedule)
--   [8]   write token: names this write, so that sending it again is recognised
--   [9]   true for a takeover: refused (as a conflict) while the stored lease has not
--         run out by the server's TIME
--   [10..] envelope field, value, field, value... (all but body, version, created_at,
--         updated_at, lease_expires, write_token, which this script sets)
-- ARGV[3]   the body (its own argument: inside the JSON it would be escaped and decoded
--           again for nothing)
--
-- Replies: {'ok', created_at, lease_expires or "", updated_at} (also when the stored
-- version is already expected + 1 with the same write token: this write, resent after
-- its reply was lost) | {'conflict', current hash as field/value list, empty if none}
-- (also for a takeover of a live lease) | {'taken', correlation id, holder id} |
-- {'early', correlation id}.
local execution_key = KEYS[1]
local correlations_key = KEYS[2]
local deadlines_key = KEYS[3]
local leases_key = KEYS[4]
local constants = cjson.decode(ARGV[1])
local args = cjson.decode(ARGV[2])
local body = ARGV[3]
local execution_head, execution_tail = constants[1], constants[2]
local status_head, status_tail = constants[3], constants[4]
local reactor_status_head, reactor_status_tail = constants[5], constants[6]
local retention_ms = constants[7]
local running = constants[8]
local id = args[1]
local expected_version = tonumber(args[2])
local now = args[3]
local new_created_at = args[4]
local finished = args[5]
local deadline_score = args[6]
local lease_seconds = args[7]
local token = args[8]
local takeover = args[9]
local fields = {}
for i = 10, #args, 2 do
  fields[args[i]] = args[i + 1]
end

-- How many of the oldest entries of an index a finished write checks for expiry.
-- Expired executions' index entries removed per finished write: enough to keep the
-- indexes bounded (each finished write adds one entry) without a scan.
local SWEEP = 2

local current = redis.call('HMGET', execution_key, 'version', 'status', 'correlation_ids',
  'created_at', 'deadline', 'lease_expires', 'write_token', 'updated_at')
local version = tonumber(current[1]) or 0
if version ~= expected_version then
  if version == expected_version + 1 and current[7] == token then
    return {'ok', current[4], current[6] or '', current[8]}
  end
  return {'conflict', redis.call('HGETALL', execution_key)}
end
-- Leases are stamped and compared in server time, never a caller's clock.
local server_now = 0
if takeover or lease_seconds ~= '' then
  local time = redis.call('TIME')
  server_now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
if takeover and current[2] == running and current[6] and tonumber(current[6]) > server_now then
  return {'conflict', redis.call('HGETALL', execution_key)}
end

-- Check every newly listed correlation id before writing anything. An id whose index
-- entry already names this execution is held, not newly listed.
local wanted = {}
if not finished then
  wanted = cjson.decode(fields.correlation_ids)
end
local keep = {}
for i, cid in ipairs(wanted) do
  local holder = redis.call('HGET', correlations_key, cid)
  if holder and holder ~= id then
    return {'taken', cid, holder}
  end
  if not holder and redis.call('EXISTS', KEYS[4 + i]) == 1 then
    return {'early', cid}
  end
  keep[cid] = true
end

if current[3] then
  for _, cid in ipairs(cjson.decode(current[3])) do
    if not keep[cid] and redis.call('HGET', correlations_key, cid) == id then
      redis.call('HDEL', correlations_key, cid)
    end
  end
end
for _, cid in ipairs(wanted) do
  redis.call('HSET', correlations_key, cid, id)
end

local lease_score = ''
if lease_seconds ~= '' then
  lease_score = string.format('%.17g', server_now + tonumber(lease_seconds))
  table.insert(args, 'lease_expires')
  table.insert(args, lease_score)
end

-- Replace the whole hash: fields the envelope no longer has (a cleared deadline...) go.
local created_at = current[4] or new_created_at
redis.call('DEL', execution_key)
redis.call('HSET', execution_key, 'version', expected_version + 1, 'created_at', created_at,
  'updated_at', now, 'body', body, 'write_token', token, unpack(args, 10))

local status_key = status_head .. fields.status .. status_tail
local reactor_status_key = reactor_status_head .. fields.status .. reactor_status_tail
-- Index updates only when something changed: most writes keep the status and have no
-- deadline, and every call saved here is time inside the one round trip.
if current[2] ~= fields.status then
  if current[2] then
    redis.call('ZREM', status_head .. current[2] .. status_tail, id)
    redis.call('ZREM', reactor_status_head .. current[2] .. reactor_status_tail, id)
  end
  redis.call('ZADD', status_key, created_at, id)
  redis.call('ZADD', reactor_status_key, created_at, id)
end

if deadline_score == '' then
  if current[5] then
    redis.call('ZREM', deadlines_key, id)
  end
else
  redis.call('ZADD', deadlines_key, deadline_score, id)
end
if lease_score == '' then
  if current[6] then
    redis.call('ZREM', leases_key, id)
  end
else
  redis.call('ZADD', leases_key, lease_score, id)
end

-- A finished execution expires; its index entries cannot expire with it, so each
-- finished write drops the expired entries at the old end of the two indexes it adds
-- to (list() skips and drops any it meets elsewhere). An entry is also stale when its
-- id was reused after expiry for an execution of another status or reactor.
local function sweep(key, reactor)
  for _, old_id in ipairs(redis.call('ZRANGE', key, 0, SWEEP - 1)) do
    local stored = redis.call('HMGET', execution_head .. old_id .. execution_tail, 'status',
      'reactor')
    if stored[1] ~= fields.status or (reactor and stored[2] ~= reactor) then
      redis.call('ZREM', key, old_id)
    end
  end
end
if finished then
  redis.call('PEXPIRE', execution_key, retention_ms)
  sweep(status_key, nil)
  sweep(reactor_status_key, fields.reactor)
end
return {'ok', created_at, lease_score, now}
"""

LOAD_BY_CORRELATION = """
-- The execution holding a correlation id of a reactor.
--
-- KEYS[1]  correlation index of the reactor (hash: correlation id -> execution id)
-- ARGV[1]  correlation id
-- ARGV[2]  execution key head  } execution key of id X = head .. X .. tail
-- ARGV[3]  execution key tail  }
--
-- Reply: {execution id, hash as field/value list}, or nil if no execution holds it.
local correlations_key = KEYS[1]
local cid = ARGV[1]
local execution_head, execution_tail = ARGV[2], ARGV[3]

local holder = redis.call('HGET', correlations_key, cid)
if not holder then
  return false
end
local stored = redis.call('HGETALL', execution_head .. holder .. execution_tail)
if #stored == 0 then
  return false
end
return {holder, stored}
"""

TOUCH = """
-- Extend the lease of an execution still at a given version, keeping the version.
--
-- KEYS[1]  execution hash
-- KEYS[2]  lease schedule (zset)
-- ARGV[1]  execution id
-- ARGV[2]  version the caller holds
-- ARGV[3]  lease length in seconds: the lease ends that long after the server's TIME
-- ARGV[4]  the running status value: only a running execution is on the lease schedule
--
-- Reply: 1 if extended, 0 if the execution is gone or at another version. (Sent again,
-- it stamps the lease afresh: nothing to recognise.)
local execution_key = KEYS[1]
local leases_key = KEYS[2]
local id = ARGV[1]
local version = tonumber(ARGV[2])
local lease_seconds = tonumber(ARGV[3])
local running = ARGV[4]

local current = redis.call('HMGET', execution_key, 'version', 'status')
if tonumber(current[1]) ~= version then
  return 0
end
local time = redis.call('TIME')
local lease_expires = string.format('%.17g', tonumber(time[1]) + tonumber(time[2]) / 1000000
  + lease_seconds)
redis.call('HSET', execution_key, 'lease_expires', lease_expires)
if current[2] == running then
  redis.call('ZADD', leases_key, lease_expires, id)
end
return 1
"""

RESERVE_IDEMPOTENCY_KEY = """
-- Bind an idempotency key to an execution unless it is bound already.
--
-- KEYS[1]  idempotency key
-- ARGV[1]  execution id to bind
-- ARGV[2]  how long the binding lasts, in milliseconds
--
-- Reply: the execution id the key is bound to. (Sent again after it bound the key, it
-- finds the key bound to the same id: the caller learns that it bound it.)
local key = KEYS[1]
local id = ARGV[1]
local ttl_ms = ARGV[2]

local bound = redis.call('GET', key)
if bound then
  return bound
end
redis.call('SET', key, id, 'PX', ttl_ms)
return id
"""

PUT_EARLY = """
-- Store a payload for a correlation id no live execution holds yet.
--
-- KEYS[1]  correlation index of the reactor (hash: correlation id -> execution id)
-- KEYS[2]  early-payload key of the correlation id (hash: payload, token)
-- ARGV[1]  correlation id
-- ARGV[2]  payload
-- ARGV[3]  how long the payload waits, in milliseconds
-- ARGV[4]  execution key head  } execution key of id X = head .. X .. tail
-- ARGV[5]  execution key tail  }
-- ARGV[6]  token naming this call
--
-- Replies: {'held', holder id} (nothing stored) | {'stored'} (also when the payload
-- waiting was stored by this call's token: this call, resent after its reply was lost)
-- | {'conflict'} (another call's payload is waiting; nothing stored).
local correlations_key = KEYS[1]
local early_key = KEYS[2]
local cid = ARGV[1]
local payload = ARGV[2]
local ttl_ms = ARGV[3]
local execution_head, execution_tail = ARGV[4], ARGV[5]
local token = ARGV[6]

local holder = redis.call('HGET', correlations_key, cid)
if holder and redis.call('EXISTS', execution_head .. holder .. execution_tail) == 1 then
  return {'held', holder}
end
local waiting = redis.call('HGET', early_key, 'token')
if waiting then
  if waiting == token then
    return {'stored'}
  end
  return {'conflict'}
end
redis.call('HSET', early_key, 'payload', payload, 'token', token)
redis.call('PEXPIRE', early_key, ttl_ms)
return {'stored'}
"""

TAKE_EARLY = """
-- Remove and return an early payload, remembering for a while what this call took.
--
-- KEYS[1]  early-payload key (hash: payload, token)
-- KEYS[2]  taken key of this call's token (string: the payload it took)
-- ARGV[1]  how long the taken key is kept, in milliseconds
--
-- Reply: the payload, or nil. Sent again with the same token (its reply was lost),
-- the payload it took.
local early_key = KEYS[1]
local taken_key = KEYS[2]
local taken_ms = ARGV[1]

local taken = redis.call('GET', taken_key)
if taken then
  return taken
end
local payload = redis.call('HGET', early_key, 'payload')
if payload then
  redis.call('DEL', early_key)
  redis.call('SET', taken_key, payload, 'PX', taken_ms)
end
return payload
"""

EXPIRED_LEASES = """
-- Running executions whose lease ran out by the server's clock.
--
-- KEYS[1]  lease schedule (zset scored by lease_expires)
-- ARGV[1]  most ids to return
--
-- Reply: the ids, soonest expiry first.
local leases_key = KEYS[1]
local limit = ARGV[1]

local time = redis.call('TIME')
local now = string.format('%.17g', tonumber(time[1]) + tonumber(time[2]) / 1000000)
return redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, limit)
"""

EXPIRED_LEASES_SCORED = """
-- EXPIRED_LEASES with the expiry of each, for merging the schedules of several reactors
-- (the cluster layout keeps one schedule per reactor).
--
-- KEYS[1]  lease schedule (zset scored by lease_expires)
-- ARGV[1]  most ids to return
--
-- Reply: id, expiry, id, expiry... soonest expiry first.
local leases_key = KEYS[1]
local limit = ARGV[1]

local time = redis.call('TIME')
local now = string.format('%.17g', tonumber(time[1]) + tonumber(time[2]) / 1000000)
return redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
"""

LIST = """
-- One page of the executions of one or more status indexes, merged newest first.
--
-- KEYS[1..n]  status indexes to merge (zsets scored by created_at)
-- ARGV[1]     limit: most executions to return (at least 1)
-- ARGV[2]     window: most entries read from each index (bounds the work)
-- ARGV[3]     execution key head  } execution key of id X = head .. X .. tail
-- ARGV[4]     execution key tail  }
-- ARGV[5]     "1" to keep only executions of the reactor ARGV[6], else "0"
-- ARGV[6]     reactor name (ignored if ARGV[5] is "0")
-- ARGV[7]     cursor score: the page starts after the entry (score, id); "" for the
-- ARGV[8]     cursor id   } newest entry
-- ARGV[8+i]   the status KEYS[i] indexes
--
-- Reply: {{{execution id, hash as field/value list}, ...}, next score, next id}: the
-- page, newest first, and the cursor where the next call goes on ("" and "" when no
-- entry is left after the page). The page is short when an index's window ran out
-- first: entries past it may sort before the next entry of another index, so the call
-- stops there and the caller goes on from the cursor.
--
-- The order is Redis's own: score descending, then member bytes descending. An entry
-- is stale when its execution expired, or when the id was reused after expiry by an
-- execution of another status or reactor: stale entries met are skipped and removed,
-- so a backlog of them is swept one bounded window at a time.
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local execution_head, execution_tail = ARGV[3], ARGV[4]
local by_reactor = ARGV[5] == '1'
local reactor = ARGV[6]
local cursor_score, cursor_id = ARGV[7], ARGV[8]

-- Whether a sorts before b byte by byte, as Redis orders members of equal score.
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- Up to `window` entries of an index after the cursor, as a flat id, score list.
local function after_cursor(key)
  if cursor_score == '' then
    return redis.call('ZREVRANGE', key, 0, window - 1, 'WITHSCORES')
  end
  local score = redis.call('ZSCORE', key, cursor_id)
  if score and tonumber(score) == tonumber(cursor_score) then
    local rank = redis.call('ZREVRANK', key, cursor_id)
    return redis.call('ZREVRANGE', key, rank + 1, rank + window, 'WITHSCORES')
  end
  -- The cursor's entry is not in this index (any more): entries of its score with a
  -- lower id, then those of lower scores. (Exact unless more than `window` entries
  -- share that score to the last bit.)
  local entries = {}
  local ties = redis.call('ZREVRANGEBYSCORE', key, cursor_score, cursor_score, 'WITHSCORES',
    'LIMIT', 0, window)
  for j = 1, #ties, 2 do
    if bytes_less(ties[j], cursor_id) then
      table.insert(entries, ties[j])
      table.insert(entries, ties[j + 1])
    end
  end
  if #entries < 2 * window then
    local lower = redis.call('ZREVRANGEBYSCORE', key, '(' .. cursor_score, '-inf',
      'WITHSCORES', 'LIMIT', 0, window - #entries / 2)
    for j = 1, #lower do
      table.insert(entries, lower[j])
    end
  end
  return entries
end

local candidates = {}
for i, key in ipairs(KEYS) do
  local entries = after_cursor(key)
  for j = 1, #entries, 2 do
    table.insert(candidates, {key = key, status = ARGV[8 + i], id = entries[j],
      score = entries[j + 1], value = tonumber(entries[j + 1]),
      -- The last entry of a full window: the index may hold more right after it.
      last = j + 1 == #entries and #entries == 2 * window})
  end
end
table.sort(candidates, function(a, b)
  if a.value ~= b.value then
    return a.value > b.value
  end
  return bytes_less(b.id, a.id)
end)

-- Once the page is full, the entries left in the windows are still read (and swept) to
-- tell whether another page exists: the last page comes with no cursor.
local found, full_at = {}, nil
for _, candidate in ipairs(candidates) do
  local key = execution_head .. candidate.id .. execution_tail
  local stored = redis.call('HMGET', key, 'status', 'reactor')
  if stored[1] == candidate.status and (not by_reactor or stored[2] == reactor) then
    if full_at then
      return {found, full_at.score, full_at.id}
    end
    table.insert(found, {candidate.id, redis.call('HGETALL', key)})
    if #found == limit then
      full_at = candidate
    end
  else
    redis.call('ZREM', candidate.key, candidate.id)
  end
  if candidate.last then
    local at = full_at or candidate
    return {found, at.score, at.id}
  end
end
return {found, '', ''}
"""
