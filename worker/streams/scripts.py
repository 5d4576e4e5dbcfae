"""The server-side scripts (Lua) of the worker. Each runs atomically in Redis, and each is written so that it
either does all of its writes or none of them, under every error Redis can return:

- everything that can fail is checked before the first write (key types, the group), and errors after a
  first write are impossible by construction;
- the first write of the publish script is an XADD, which Redis refuses as a whole at its ``maxmemory``
  limit (an XACK first would not be refused, and would let the XADDs after it through);
- on Redis 7 the scripts carry a shebang (``#!lua``), so Redis refuses them at the start, before any
  command, while it is out of memory; Redis 6.2 has no shebang and gets the plain text.

A script that has not written can be stopped by ``SCRIPT KILL``; one that has written cannot (Redis refuses
to kill it), so a killed script has no effects.

**The ledger of what is finished.** Beside the input stream, per group, livetopic keeps the *resume mark*
(``<input>:resume:<group>``, a string: every entry up to it is finished) and the *done set*
(``<input>:done:<group>``, a sorted set: entries after the mark that are finished, scored by their
millisecond part). An entry is finished when a result or dead letter of it was published: exactly when it
is at or below the mark or in the done set. The publish script publishes an entry only when it is not
finished (whatever the group's pending list says, which an operator can change: ``XGROUP DESTROY``,
``CREATE … 0``, ``DELCONSUMER``, ``SETID``), then advances the mark over the finished entries that follow
it in the stream. The mark never passes an unfinished entry; the group is moved to it when it is found
behind it (entries below it would be delivered again) or when entries after it were delivered and lost
from the pending list (they would never be delivered again).
"""

from __future__ import annotations

__all__ = ["ENSURE_LUA", "KEY_CHECKS_LUA", "PUBLISH_LUA", "RECLAIM_LUA", "for_server"]

# Functions shared by the scripts (prepended to each): key types checked before any write.
KEY_CHECKS_LUA = """
local function check_type(key, want, what)
  local t = redis.call('TYPE', key).ok
  if t ~= want and t ~= 'none' then
    return redis.error_reply('WRONGTYPE livetopic: the ' .. what .. ' key ' .. key .. ' holds a ' .. t ..
                             ', not a ' .. want)
  end
end
local function check_stream(key, what) return check_type(key, 'stream', what) end
"""

# The ledger: entry ids compared exactly (decimal strings, no leading zeros), the group's state, the mark.
_LEDGER = """
local function num_lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function id_lt(a, b)  -- stream id a < b
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if am ~= bm then return num_lt(am, bm) end
  return num_lt(as, bs)
end
local function id_ms(id) return tonumber((string.match(id, '^(%d+)-'))) end
local function before(id)  -- an id just before id: a mark that finishes nothing at or after id
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then
    if #seq > 15 then return ms .. '-0' end  -- earlier than needed: leaves more unfinished, never more finished
    return ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
  end
  if ms == '0' then return '0-0' end
  return string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
end
local function group_info(stream, group)  -- the group's XINFO GROUPS fields, or nil
  if redis.call('EXISTS', stream) == 0 then return nil end
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local fields = {}
    for j = 1, #info, 2 do fields[info[j]] = info[j + 1] end
    if fields['name'] == group then return fields end
  end
  return nil
end
local function first_mark(stream, group, info)  -- a group without a mark (made by someone else): its position
  local summary = redis.call('XPENDING', stream, group)
  if summary[1] > 0 then return before(summary[2]) end
  return info['last-delivered-id']
end
local function is_done(done, id) return redis.call('ZSCORE', done, id) ~= false end
local function trim(done, mark)  -- the done set keeps only entries after the mark
  local ms = id_ms(mark)
  redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. ms)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', done, ms, ms)) do
    if not id_lt(mark, id) then redis.call('ZREM', done, id) end
  end
end
-- Walk the stream after mark while its entries are finished (in now_done, or the done set); returns the new
-- mark and the first unfinished entry's id (nil when the stream ends there or the budget ran out).
local function walk(stream, done, mark, now_done, use_set, budget)
  while budget > 0 do
    local rows = redis.call('XRANGE', stream, '(' .. mark, '+', 'COUNT', math.min(budget, 512))
    if #rows == 0 then return mark, nil end
    for _, row in ipairs(rows) do
      local id = row[1]
      if not (now_done[id] or (use_set and is_done(done, id))) then return mark, id end
      mark = id
    end
    budget = budget - #rows
  end
  return mark, nil
end
-- Where the group must stand: not behind the mark (finished entries would come again), and not past an entry
-- after the mark that was delivered, is unfinished and is in no consumer's pending list (lost: it would
-- never come again). Moves it with XGROUP SETID (a write); returns 'behind', 'lost' or ''.
local function place_group(stream, group, info, mark, stop)
  local last = info['last-delivered-id']
  local why = ''
  if id_lt(last, mark) then
    why = 'behind'
  elseif stop and not id_lt(last, stop) and #redis.call('XPENDING', stream, group, stop, stop, 1) == 0 then
    why = 'lost'
  end
  if why ~= '' then redis.call('XGROUP', 'SETID', stream, group, mark) end
  return why
end
"""

# KEYS: input, output, dead, resume mark, done set. ARGV: group, output maxlen, dead maxlen, the records as one
# JSON array (one argument, not several per field: the client packs one string instead of thousands), each
# [kind ('r' result | 'd' dead letter), entry id, [field, value, field, value, ...]].
# Returns {flags, lost, repeated, moved, mark}: per record 1 published (and acked) by this call, 0 skipped
# (finished already); how many published records were in no pending list (lost by the group: published all the
# same); how many finished records were pending again (delivered again: acked, not published); how the group
# was moved ('' not at all); the mark after this call.
PUBLISH_LUA = (
    KEY_CHECKS_LUA
    + _LEDGER
    + """
local stream, mark_key, done = KEYS[1], KEYS[4], KEYS[5]
local group = ARGV[1]
local err = check_stream(KEYS[2], 'output stream') or check_stream(KEYS[3], 'dead-letter stream') or
            check_type(mark_key, 'string', 'resume mark') or check_type(done, 'zset', 'done set')
if err then return err end
local info = group_info(stream, group)
if not info then return redis.error_reply('NOGROUP livetopic: no consumer group ' .. group .. ' on ' .. stream) end
local mark = redis.call('GET', mark_key) or first_mark(stream, group, info)
local use_set = redis.call('ZCARD', done) > 0
local records = cjson.decode(ARGV[4])
local out, todo, todo_ids, again_ids, now_done = {}, {}, {}, {}, {}
for i, record in ipairs(records) do  -- read only: which records are finished already
  local id = record[2]
  if now_done[id] or not id_lt(mark, id) or (use_set and is_done(done, id)) then
    out[i] = 0
    again_ids[#again_ids + 1] = id
  else
    out[i] = 1
    now_done[id] = true
    todo[#todo + 1] = record
    todo_ids[#todo_ids + 1] = id
  end
end
for _, record in ipairs(todo) do  -- publish first: the first write is an XADD
  if record[1] == 'r' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(record[3]))
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(record[3]))
  end
end
local function ack(ids)  -- in one command per thousand (unpack's limit is ~8000 values); how many were pending
  local n = 0
  for start = 1, #ids, 1000 do
    n = n + redis.call('XACK', stream, group, unpack(ids, start, math.min(start + 999, #ids)))
  end
  return n
end
local lost = #todo_ids - ack(todo_ids)
local repeated = ack(again_ids)
local new_mark, stop = walk(stream, done, mark, now_done, use_set, 2 * #records + 128)
for _, id in ipairs(todo_ids) do
  if id_lt(new_mark, id) then redis.call('ZADD', done, id_ms(id), id) end
end
if use_set then trim(done, new_mark) end  -- what this call added is after the mark
redis.call('SET', mark_key, new_mark)
local moved = place_group(stream, group, info, new_mark, stop)
return {out, lost, repeated, moved, new_mark}
"""
)

# KEYS: input, resume mark, done set. ARGV: group, where a group starts when there is no mark ('0' or '$').
# Every path that may create or accept a group runs this (a worker starting, a producer starting, a worker that
# met NOGROUP): a missing group is created at the mark (without a mark: at ARGV[2], and the mark is set there);
# a group found behind the mark, or past entries it lost, is moved to the mark.
# Returns {1 created | 0 existed, the mark, how the group was moved ('' not at all), entries skipped (a group
# created at '$' without a mark over a stream that holds entries: those are never delivered), 1 if the mark was
# there before}.
ENSURE_LUA = (
    KEY_CHECKS_LUA
    + _LEDGER
    + """
local stream, mark_key, done = KEYS[1], KEYS[2], KEYS[3]
local group, start = ARGV[1], ARGV[2]
local err = check_stream(stream, 'input stream') or check_type(mark_key, 'string', 'resume mark') or
            check_type(done, 'zset', 'done set')
if err then return err end
local mark = redis.call('GET', mark_key)
local info = group_info(stream, group)
if not info then
  local skipped = 0
  if not mark and start == '$' then skipped = redis.call('XLEN', stream) end
  redis.call('XGROUP', 'CREATE', stream, group, mark or start, 'MKSTREAM')
  if mark then return {1, mark, '', 0, 1} end
  mark = group_info(stream, group)['last-delivered-id']
  redis.call('SET', mark_key, mark)
  return {1, mark, '', skipped, 0}
end
if not mark then
  mark = first_mark(stream, group, info)
  redis.call('SET', mark_key, mark)
end
local use_set = redis.call('ZCARD', done) > 0
local new_mark, stop = walk(stream, done, mark, {}, use_set, 10000)
if new_mark ~= mark then
  redis.call('SET', mark_key, new_mark)
  trim(done, new_mark)
end
return {0, new_mark, place_group(stream, group, info, new_mark, stop), 0, 1}
"""
)

# KEYS: input, dead, done set. ARGV: group, consumer, min idle ms, start id, count, dead maxlen, deleted reason.
# XAUTOCLAIM ... JUSTID claims without counting a delivery; XCLAIM then counts one (an entry this
# consumer already held is only read, so entries it is still working on are not counted again). An entry
# deleted from the input stream while pending is dead-lettered here: its dead letter first, then its ack, and
# it is finished (the done set), so a worker that still holds it publishes nothing more for it.
# Returns {next cursor, {{id, {field, value, ...}, times delivered}, ...}, {dead-lettered id, ...}}.
RECLAIM_LUA = (
    KEY_CHECKS_LUA
    + """
local group, me = ARGV[1], ARGV[2]
local err = check_stream(KEYS[2], 'dead-letter stream') or check_type(KEYS[3], 'zset', 'done set')
if err then return err end
local owner, times = {}, {}
for _, row in ipairs(redis.call('XPENDING', KEYS[1], group, 'IDLE', ARGV[3], ARGV[4], '+', ARGV[5])) do
  owner[row[1]], times[row[1]] = row[2], row[4]
end
local r = redis.call('XAUTOCLAIM', KEYS[1], group, me, ARGV[3], ARGV[4], 'COUNT', ARGV[5], 'JUSTID')
local claimed, deleted = {}, {}
local function dead(id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'source_id', id, 'error', ARGV[7],
             'deliveries', times[id] or 0)
  redis.call('ZADD', KEYS[3], tonumber((string.match(id, '^(%d+)-'))), id)
  deleted[#deleted + 1] = id
end
for _, id in ipairs(r[2]) do
  local e
  if owner[id] == me then
    e = redis.call('XRANGE', KEYS[1], id, id)
  else
    e = redis.call('XCLAIM', KEYS[1], group, me, 0, id)
  end
  if e[1] then
    claimed[#claimed + 1] = {id, e[1][2], redis.call('XPENDING', KEYS[1], group, id, id, 1)[1][4]}
  elseif #redis.call('XPENDING', KEYS[1], group, id, id, 1) > 0 then  -- Redis 6.2: deleted, still pending
    dead(id)
    redis.call('XACK', KEYS[1], group, id)
  end
end
for _, id in ipairs(r[3] or {}) do dead(id) end  -- Redis 7+: deleted, already dropped from the PEL
return {r[1], claimed, deleted}
"""
)


def for_server(script: str, major_version: int) -> str:
    """``script`` as Redis ``major_version`` should get it: with a shebang from Redis 7 on (refused as a
    whole while the server is out of memory), as plain text on 6.2."""
    return "#!lua\n" + script if major_version >= 7 else script
