-- GCRA token bucket, the same arithmetic as gcra.rs `take` (plus the refund of expired leases), atomic inside Redis.
-- KEYS[1] bucket key; ARGV[1] interval_us (1/rate); ARGV[2] capacity_us (burst*interval);
-- ARGV[3] cost; ARGV[4] want (tokens to take when available, >= cost: a lease);
-- ARGV[5] share: a lease gets at most remaining / share tokens (adaptive leases shrink as the
-- bucket empties, down to the cost alone); ARGV[6] refund: leased tokens that expired unspent,
-- given back first (never beyond a full bucket); ARGV[7] charge: tokens this replica admitted
-- from its local bucket while Redis was unreachable, taken first (never beyond an empty
-- bucket), so the shared bucket does not come back full after every outage.
-- Time comes from Redis TIME so every edge replica shares one clock.
-- Returns {granted (0 = refused), remaining, retry_after_us, reset_us}.
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local share = tonumber(ARGV[5] or 1)
local refund = tonumber(ARGV[6] or 0)
local charge = tonumber(ARGV[7] or 0)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
if refund > 0 then
  tat = math.max(now, tat - refund * interval)
end
if charge > 0 then
  -- never beyond an empty bucket, and never back: a TAT already past that stays
  tat = math.max(tat, math.min(tat + charge * interval, now + capacity))
end
local used = tat - now
local available = math.floor((capacity - used) / interval)
if available < cost then
  if refund > 0 or charge > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil(used / 1000) + 1)
  end
  return {0, math.max(available, 0), tat + cost * interval - capacity - now, used}
end
local granted = math.min(math.max(want, cost), math.max(cost, math.floor(available / share)))
local new_tat = tat + granted * interval
-- the key disappears once the bucket is full again: idle clients cost no memory
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {granted, available - granted, 0, new_tat - now}
