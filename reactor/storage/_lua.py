"""Lua scripts of :class:`~reactor.storage.RedisStorage`: each one is one atomic round trip.

Every script's header says what each ``KEYS[i]`` and ``ARGV[i]`` is; the script copies
them into named locals first. Replies that are not plain data are tagged tables
(``{'ok', ...}``, ``{'conflict', ...}``) that Python matches on.

Every key a script touches is passed in ``KEYS``, as Redis's scripting contract asks
(Redis does not check it; ``tests/storage/declared.py`` does): a script never builds a
key name. Where the key depends on what the script reads, either all candidates are
passed -- the status indexes, one per status, of which the script picks the one of the
status it reads -- or the caller passes the key it expects and the script checks the
expectation under its atomicity, answering with what it found instead when it was
wrong, so that the caller calls again with that key: the execution holding a
correlation id (``LOAD_BY_CORRELATION``, ``PUT_EARLY``). A listing reads index entries
in one script (``LIST_INDEXES``) and the executions they name in a second one
(``LIST_PAGE``), which checks each entry again.

An execution hash has the fields ``reactor``, ``status``, ``version``, ``body``,
``correlation_ids`` (JSON array), ``created_at``, ``updated_at``, ``write_token`` (the
token of the write that stored this version) and, when set, ``deadline``,
``lease_expires`` and ``reason``. Numbers are stored as Python's ``repr`` (or ``%.17g``
when a script computes them) so they read back exactly. An early payload is a hash of
``payload`` and ``token``.

Leases are stamped in server time (``TIME``): a caller's clock never decides whether a
lease ran out. Every script does bounded work whatever the number of keys: the longest,
``LIST_INDEXES`` and ``LIST_PAGE``, read a window of each index whose size the caller
bounds.

Lua compares strings with the server's locale; where the order must be Redis's own
(sorted-set members, byte by byte), scripts compare bytes themselves.
"""

from __future__ import annotations

__all__ = [
    "EXPIRED_LEASES",
    "EXPIRED_LEASES_SCORED",
    "LIST_INDEXES",
    "LIST_PAGE",
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
-- KEYS[5..] the status indexes and expiry schedules ARGV[6] points at, then from
--           KEYS[ARGV[5]] on, the early-payload key of each correlation id listed in
--           the envelope, in order (none when the new status is finished: it holds no
--           correlation id)
-- ARGV[1]   a JSON array of this write's values (one argument: packing dozens of
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
-- ARGV[2]   the body (its own argument: inside the JSON it would be escaped and decoded
--           again for nothing)
-- ARGV[3..] what every write of the reactor sends alike (the client packs it once per
--           reactor; plain arguments: decoding them as JSON cost ~7 µs a write):
--   ARGV[3]   retention in milliseconds (expiry of a finished execution)
--   ARGV[4]   the running status value
--   ARGV[5]   position in KEYS of the first early-payload key
--   ARGV[6]   triples "status i j", separated by spaces: KEYS[i] is an index listing
--             the executions of that status (zset of ids scored by created_at; all
--             reactors' and the reactor's own in the standalone layout, the reactor's own
--             in the cluster layout); for a finished status, KEYS[j] is its expiry
--             schedule (zset of the same ids scored by when the execution expires), j = 0
--             otherwise
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
local args = cjson.decode(ARGV[1])
local body = ARGV[2]
local retention_ms = ARGV[3]
local running = ARGV[4]
local early_from = tonumber(ARGV[5])
-- The {i, j} KEYS positions of the indexes (and expiry schedules) of a status.
local function indexes_of(status)
  local found = {}
  for listed, i, j in string.gmatch(ARGV[6], '(%S+) (%d+) (%d+)') do
    if listed == status then
      found[#found + 1] = {tonumber(i), tonumber(j)}
    end
  end
  return found
end
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

-- Expired executions' index entries removed per finished write: enough to keep the
-- indexes bounded (each finished write adds one entry) without a scan.
local SWEEP = 2

local current = redis.call('HMGET', execution_key, 'version', 'status', 'correlation_ids',
  'created_at', 'deadline', 'lease_expires', 'write_token', 'updated_at', 'reason')
local version = tonumber(current[1]) or 0
if version ~= expected_version then
  if version == expected_version + 1 and current[7] == token then
    return {'ok', current[4], current[6] or '', current[8]}
  end
  return {'conflict', redis.call('HGETALL', execution_key)}
end
-- Leases are stamped and compared in server time, never a caller's clock.
local server_now = 0
if takeover or lease_seconds ~= '' or finished then
  local time = redis.call('TIME')
  server_now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
if takeover and current[2] == running and current[6] and tonumber(current[6]) > server_now then
  return {'conflict', redis.call('HGETALL', execution_key)}
end

-- Check every newly listed correlation id before writing anything. An id whose index
-- entry already names this execution is held, not newly listed. A live execution that
-- lists the ids it listed already holds them all (its writes listed them atomically,
-- and only it releases them): most writes skip this.
if finished or current[3] ~= fields.correlation_ids then
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
    if not holder and redis.call('EXISTS', KEYS[early_from + i - 1]) == 1 then
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
end

local lease_score = ''
if lease_seconds ~= '' then
  lease_score = string.format('%.17g', server_now + tonumber(lease_seconds))
  table.insert(args, 'lease_expires')
  table.insert(args, lease_score)
end

-- Overwrite the hash in place; the optional fields the envelope no longer has (a
-- cleared deadline...) go. (Cheaper than replacing the whole hash.)
local created_at = current[4] or new_created_at
redis.call('HSET', execution_key, 'version', expected_version + 1, 'created_at', created_at,
  'updated_at', now, 'body', body, 'write_token', token, unpack(args, 10))
local gone = {}
if current[5] and not fields.deadline then
  gone[#gone + 1] = 'deadline'
end
if current[6] and lease_score == '' then
  gone[#gone + 1] = 'lease_expires'
end
if current[9] and not fields.reason then
  gone[#gone + 1] = 'reason'
end
if #gone > 0 then
  redis.call('HDEL', execution_key, unpack(gone))
end

-- Index updates only when something changed: most writes keep the status and have no
-- deadline, and every call saved here is time inside the one round trip.
local new_indexes = nil  -- those of the new status, found once if needed
if current[2] ~= fields.status then
  if current[2] then
    local was_finished = false  -- the old status has expiry schedules
    for _, at in ipairs(indexes_of(current[2])) do
      redis.call('ZREM', KEYS[at[1]], id)
      if at[2] > 0 then
        redis.call('ZREM', KEYS[at[2]], id)
        was_finished = true
      end
    end
    if was_finished and not finished then  -- live again: it no longer expires
      redis.call('PERSIST', execution_key)
    end
  end
  new_indexes = indexes_of(fields.status)
  for _, at in ipairs(new_indexes) do
    redis.call('ZADD', KEYS[at[1]], created_at, id)
  end
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
-- finished write drops the expired entries at the old end of the expiry schedules of
-- the indexes it adds to (list() skips and drops any it meets elsewhere). This also
-- drops an entry whose id was reused after expiry for an execution of another status
-- or reactor; an id reused with this status and reactor is listed and scheduled anew.
if finished then
  redis.call('PEXPIRE', execution_key, retention_ms)
  local expires = string.format('%.17g', server_now + tonumber(retention_ms) / 1000)
  for _, at in ipairs(new_indexes or indexes_of(fields.status)) do
    local index_key, expiry_key = KEYS[at[1]], KEYS[at[2]]
    for _, old_id in ipairs(redis.call('ZRANGEBYSCORE', expiry_key, '-inf',
        string.format('%.17g', server_now), 'LIMIT', 0, SWEEP)) do
      if old_id ~= id then
        redis.call('ZREM', index_key, old_id)
        redis.call('ZREM', expiry_key, old_id)
      end
    end
    redis.call('ZADD', expiry_key, expires, id)
  end
end
return {'ok', created_at, lease_score, now}
"""

LOAD_BY_CORRELATION = """
-- The execution holding a correlation id of a reactor, if it is the one expected.
--
-- KEYS[1]  correlation index of the reactor (hash: correlation id -> execution id)
-- KEYS[2]  execution hash of the expected holder (absent if none is expected)
-- ARGV[1]  correlation id
-- ARGV[2]  id of the expected holder ("" if none is expected)
--
-- Replies: {'found', hash as field/value list} (the expected holder holds it) |
-- {'holder', execution id} (another execution holds it: call again expecting that
-- one) | nil (no execution holds it).
local correlations_key = KEYS[1]
local expected_key = KEYS[2]
local cid = ARGV[1]
local expected = ARGV[2]

local holder = redis.call('HGET', correlations_key, cid)
if not holder then
  return false
end
if holder ~= expected then
  return {'holder', holder}
end
local stored = redis.call('HGETALL', expected_key)
if #stored == 0 then
  return false
end
return {'found', stored}
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
-- KEYS[3]  execution hash of the expected holder (absent if none is expected)
-- ARGV[1]  correlation id
-- ARGV[2]  payload
-- ARGV[3]  how long the payload waits, in milliseconds
-- ARGV[4]  token naming this call
-- ARGV[5]  id of the expected holder ("" if none is expected)
--
-- Replies: {'held', holder id} (nothing stored) | {'holder', holder id} (nothing
-- stored: the index names another holder than expected; call again expecting it) |
-- {'stored'} (also when the payload waiting was stored by this call's token: this
-- call, resent after its reply was lost) | {'conflict'} (another call's payload is
-- waiting; nothing stored). An index entry naming an execution that is gone holds
-- nothing.
local correlations_key = KEYS[1]
local early_key = KEYS[2]
local expected_key = KEYS[3]
local cid = ARGV[1]
local payload = ARGV[2]
local ttl_ms = ARGV[3]
local token = ARGV[4]
local expected = ARGV[5]

local holder = redis.call('HGET', correlations_key, cid)
if holder then
  if holder ~= expected then
    return {'holder', holder}
  end
  if redis.call('EXISTS', expected_key) == 1 then
    return {'held', holder}
  end
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

LIST_INDEXES = """
-- The entries of one or more status indexes after a cursor, merged newest first: the
-- first half of a listing, whose second half, LIST_PAGE, reads the executions they name.
--
-- KEYS[1..n]  status indexes to merge (zsets scored by created_at)
-- ARGV[1]     window: most entries read from each index (bounds the work)
-- ARGV[2]     cursor score: the entries start after the entry (score, id); "" for the
-- ARGV[3]     cursor id   } newest entry
--
-- Reply: {{i, id, score, last}, ...}: entries of KEYS[i], in Redis's own order (score
-- descending, then member bytes descending); last is 1 for the last entry of a full
-- window (the index may hold more right after it), else 0.
local window = tonumber(ARGV[1])
local cursor_score, cursor_id = ARGV[2], ARGV[3]

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
    table.insert(candidates, {i, entries[j], entries[j + 1],
      (j + 1 == #entries and #entries == 2 * window) and 1 or 0})
  end
end
table.sort(candidates, function(a, b)
  local x, y = tonumber(a[3]), tonumber(b[3])
  if x ~= y then
    return x > y
  end
  return bytes_less(b[2], a[2])
end)
return candidates
"""

LIST_PAGE = """
-- One page of a listing: the executions named by the entries LIST_INDEXES returned,
-- each checked again against its index.
--
-- KEYS[1..n]   the status indexes LIST_INDEXES read
-- KEYS[n+j]    execution hash of the j-th entry LIST_INDEXES returned
-- ARGV[1]      n
-- ARGV[2]      limit: most executions to return (at least 1)
-- ARGV[3]      "1" to keep only executions of the reactor ARGV[4], else "0"
-- ARGV[4]      reactor name (ignored if ARGV[3] is "0")
-- ARGV[4+i]    the status KEYS[i] indexes
-- ARGV[4+n+4j-3..4+n+4j]  the j-th entry: i, id, score and last, as LIST_INDEXES
--              returned them
--
-- Reply: {{{execution id, hash as field/value list}, ...}, next score, next id}: the
-- page, newest first, and the cursor where the next listing call goes on ("" and ""
-- when no entry is left after the page). The page is short when an index's window ran
-- out first: entries past it may sort before the next entry of another index, so the
-- call stops there and the caller goes on from the cursor.
--
-- An entry is stale when its execution expired, or when the id was reused after expiry
-- by an execution of another status or reactor (or the execution moved on since
-- LIST_INDEXES read it): stale entries met are skipped and removed, so a backlog of
-- them is swept one bounded window at a time.
local n = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local by_reactor = ARGV[3] == '1'
local reactor = ARGV[4]

-- Once the page is full, the entries left in the windows are still read (and swept) to
-- tell whether another page exists: the last page comes with no cursor.
local found, full_at = {}, nil
for j = 1, #KEYS - n do
  local at = 4 + n + 4 * (j - 1)
  local index = tonumber(ARGV[at + 1])
  local id, score, last = ARGV[at + 2], ARGV[at + 3], ARGV[at + 4] == '1'
  local execution_key = KEYS[n + j]
  local stored = redis.call('HMGET', execution_key, 'status', 'reactor')
  if stored[1] == ARGV[4 + index] and (not by_reactor or stored[2] == reactor) then
    if full_at then
      return {found, full_at[1], full_at[2]}
    end
    table.insert(found, {id, redis.call('HGETALL', execution_key)})
    if #found == limit then
      full_at = {score, id}
    end
  else
    redis.call('ZREM', KEYS[index], id)
  end
  if last then
    local cursor = full_at or {score, id}
    return {found, cursor[1], cursor[2]}
  end
end
return {found, '', ''}
"""
