"""The server-side scripts (Lua) of the worker. Each runs atomically in Redis, and each is written so that it
either does all of its writes or none of them, under every error Redis can return:

- everything that can fail is checked before the first write (key types, the group, which entries are
  still pending), and errors after a first write are impossible by construction;
- the first write of the publish script is an XADD, which Redis refuses as a whole at its ``maxmemory``
  limit (an XACK first would not be refused, and would let the XADDs after it through);
- on Redis 7 the scripts carry a shebang (``#!lua``), so Redis refuses them at the start, before any
  command, while it is out of memory; Redis 6.2 has no shebang and gets the plain text.

A script that has not written can be stopped by ``SCRIPT KILL``; one that has written cannot (Redis refuses
to kill it), so a killed script has no effects.
"""

from __future__ import annotations

__all__ = ["PUBLISH_LUA", "RECLAIM_LUA", "RECREATE_LUA", "for_server"]

# Functions shared by the scripts (prepended to each).
_COMMON = """
local function check_stream(key, what)
  local t = redis.call('TYPE', key).ok
  if t ~= 'stream' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE livetopic: the ' .. what .. ' key ' .. key .. ' holds a ' .. t ..
                             ', not a stream')
  end
end
"""

# KEYS: input, output, dead, resume mark. ARGV: group, output maxlen, dead maxlen, the records as one JSON
# array (one argument, not several per field: the client packs one string instead of thousands), each
# [kind ('r' result | 'd' dead letter), entry id, [field, value, field, value, ...]].
# Returns one flag per record: 1 published (and acked) by this call, 0 skipped (not pending: already acked).
# After acking, the resume mark is set to just before the group's oldest pending entry (or to its last
# delivered id when none is pending): where to recreate the group if it is lost, skipping nothing.
PUBLISH_LUA = _COMMON + """
local function before(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then
    if #seq > 15 then return ms .. '-0' end  -- earlier than needed: delivers more again, never skips
    return ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
  end
  if ms == '0' then return '0-0' end
  return string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
end
local function resume_point(stream, group)
  local summary = redis.call('XPENDING', stream, group)
  if summary[1] > 0 then return before(summary[2]) end
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local fields = {}
    for j = 1, #info, 2 do fields[info[j]] = info[j + 1] end
    if fields['name'] == group then return fields['last-delivered-id'] end
  end
  return '0-0'
end

local group = ARGV[1]
local err = check_stream(KEYS[2], 'output stream') or check_stream(KEYS[3], 'dead-letter stream')
if err then return err end
local records = cjson.decode(ARGV[4])
local out, todo, seen = {}, {}, {}
for _, record in ipairs(records) do  -- read only: which records are still pending (NOGROUP, WRONGTYPE stop us)
  local id = record[2]
  local pending = not seen[id] and #redis.call('XPENDING', KEYS[1], group, id, id, 1) > 0
  seen[id] = true
  out[#out + 1] = pending and 1 or 0
  if pending then todo[#todo + 1] = record end
end
for _, record in ipairs(todo) do  -- publish first: the first write is an XADD
  if record[1] == 'r' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(record[3]))
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(record[3]))
  end
end
for start = 1, #todo, 1000 do  -- acks in one command per thousand (unpack's limit is ~8000 values)
  local ids = {}
  for j = start, math.min(start + 999, #todo) do ids[#ids + 1] = todo[j][2] end
  redis.call('XACK', KEYS[1], group, unpack(ids))
end
if #todo > 0 then redis.call('SET', KEYS[4], resume_point(KEYS[1], group)) end
return out
"""

# KEYS: input, dead. ARGV: group, consumer, min idle ms, start id, count, dead maxlen, deleted reason.
# XAUTOCLAIM ... JUSTID claims without counting a delivery; XCLAIM then counts one (an entry this
# consumer already held is only read, so entries it is still working on are not counted again). An entry
# deleted from the input stream while pending is dead-lettered here: its dead letter first, then its ack.
# Returns {next cursor, {{id, {field, value, ...}, times delivered}, ...}, {dead-lettered id, ...}}.
RECLAIM_LUA = _COMMON + """
local group, me = ARGV[1], ARGV[2]
local err = check_stream(KEYS[2], 'dead-letter stream')
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

# KEYS: input, resume mark. ARGV: group, where to start when there is no mark.
# Recreates a lost consumer group at the resume mark (see PUBLISH_LUA). Returns {1 created | 0 it existed
# (another worker recreated it), the id it starts after}.
RECREATE_LUA = """
local at = redis.call('GET', KEYS[2]) or ARGV[2]
local ok = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], at, 'MKSTREAM')
if type(ok) == 'table' and ok.err then
  if string.sub(ok.err, 1, 9) == 'BUSYGROUP' then return {0, at} end
  return redis.error_reply(ok.err)
end
return {1, at}
"""


def for_server(script: str, major_version: int) -> str:
    """``script`` as Redis ``major_version`` should get it: with a shebang from Redis 7 on (refused as a
    whole while the server is out of memory), as plain text on 6.2."""
    return "#!lua\n" + script if major_version >= 7 else script
