"""The server-side scripts (Lua) of the worker. Each runs atomically in Redis."""

from __future__ import annotations

__all__ = ["AUTOCLAIM_LUA", "PUBLISH_LUA"]

# KEYS: input, output, dead. ARGV: group, output maxlen, dead maxlen, then per record:
# kind ('r' result | 'd' dead letter), entry id, field count n, then n field/value pairs.
# Returns one flag per record: 1 published, 0 skipped (already acked by someone else).
PUBLISH_LUA = """
local out = {}
local i = 4
while i <= #ARGV do
  local kind, id, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local args = {}
    for j = 1, 2 * n do args[j] = ARGV[i + 2 + j] end
    if kind == 'r' then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(args))
    else
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(args))
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  i = i + 3 + 2 * n
end
return out
"""

# KEYS: input, dead. ARGV: group, consumer, min idle ms, start id, count, dead maxlen, deleted reason.
# XAUTOCLAIM ... JUSTID claims without counting a delivery; XCLAIM then counts one (an entry this
# consumer already held is only read, so entries it is still working on are not counted again).
# Returns {next cursor, {{id, {field, value, ...}, times delivered}, ...}, {dead-lettered id, ...}}.
AUTOCLAIM_LUA = """
local group, me = ARGV[1], ARGV[2]
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
  elseif redis.call('XACK', KEYS[1], group, id) == 1 then  -- Redis 6.2: deleted, still pending
    dead(id)
  end
end
for _, id in ipairs(r[3] or {}) do dead(id) end  -- Redis 7+: deleted, already dropped from the PEL
return {r[1], claimed, deleted}
"""
