-- GCRA token bucket, the same arithmetic as gcra.rs, atomic inside Redis.
-- KEYS[1] bucket key; ARGV[1] interval_us (1/rate); ARGV[2] capacity_us (burst*interval);
-- ARGV[3] cost. Time comes from Redis TIME so every edge replica shares one clock.
-- Returns {allowed, remaining, retry_after_us, reset_us}.
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - capacity
if allow_at > now then
  local used = tat - now
  return {0, math.floor((capacity - used) / interval), allow_at - now, used}
end
local used = new_tat - now
-- the key disappears once the bucket is full again: idle clients cost no memory
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(used / 1000) + 1)
return {1, math.floor((capacity - used) / interval), 0, used}
