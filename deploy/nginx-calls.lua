-- The calls nginx routed itself, counted in each worker and sent to the gateway's call log
-- (app/dataplane/calllog.py) a few times a second, so that its metrics and invocationCount
-- count them as if the gateway had made them.
--
-- One datagram per call cost nginx about a fifth of its throughput (a formatted line and a
-- sendto each: docs/invoke-performance.md). Here a call is a few additions to this worker's
-- table: per pool and status, the calls, their seconds and how many fell in each of the
-- gateway's histogram buckets. Every FLUSH seconds the sums go out and the table starts again;
-- sums that could not be sent stay for the next round, and a worker that is shutting down (a
-- reload) sends what it has.
--
-- The gateway renders start() into nginx's configuration (app/dataplane/route_table.py) with
-- its address, the port, the token only nginx and the gateway know and the bucket bounds.
-- A datagram is the token on its first line, then one line per pool and status:
--   fn_<reference> <status> <calls> <seconds> <calls per bucket, the last one +Inf>...
local _M = {}

local FLUSH = 0.2
-- Far below the 64 KiB a UDP datagram holds: a table of many functions goes out in several.
local MAX_DATAGRAM = 8192
local FALLBACK = "gateway_fallback"

-- Set by start(): host, port, token, buckets (the finite upper bounds, ascending).
local target
-- pool -> status -> { calls, seconds, per-bucket calls }, since the last datagrams went out.
local counts = {}
local socket
-- The last send error, logged once until a send succeeds.
local problem

-- The table's entry of `pool` and `status`, made (no call yet) when missing.
local function entry_of(pool, status)
    local statuses = counts[pool]
    if not statuses then
        statuses = {}
        counts[pool] = statuses
    end
    local entry = statuses[status]
    if not entry then
        local buckets = {}
        for index = 1, #target.buckets + 1 do buckets[index] = 0 end
        entry = { calls = 0, seconds = 0, buckets = buckets }
        statuses[status] = entry
    end
    return entry
end

-- log_by_lua of the locations that route calls: count this one if nginx routed it itself.
function _M.count()
    if not target then return end
    local var = ngx.var
    local pool = var.function_pool
    if not pool or pool == "" or pool == FALLBACK then return end
    local seconds = tonumber(var.request_time) or 0
    local entry = entry_of(pool, var.status)
    entry.calls = entry.calls + 1
    entry.seconds = entry.seconds + seconds
    local bounds = target.buckets
    local index = #bounds + 1
    for bound = 1, #bounds do
        if seconds <= bounds[bound] then
            index = bound
            break
        end
    end
    entry.buckets[index] = entry.buckets[index] + 1
end

-- Adds the sums of an entry that could not be sent to the table of the next round.
local function keep(pool, status, unsent)
    local entry = entry_of(pool, status)
    entry.calls = entry.calls + unsent.calls
    entry.seconds = entry.seconds + unsent.seconds
    for index, calls in ipairs(unsent.buckets) do
        entry.buckets[index] = entry.buckets[index] + calls
    end
end

local function send(datagram)
    if not socket then
        local sock = ngx.socket.udp()
        local ok, err = sock:setpeername(target.host, target.port)
        if not ok then return nil, err end
        socket = sock
    end
    local ok, err = socket:send(datagram)
    if not ok then
        socket:close()
        socket = nil
    end
    return ok, err
end

-- Sends the lines of `entries` ({ line, pool, status, entry }) from `first` on, as one datagram
-- of at most MAX_DATAGRAM bytes; the position of the first line it did not take, or nil and the
-- error.
local function send_from(entries, first)
    local parts, size = { target.token }, #target.token
    local position = first
    while position <= #entries and (position == first or size + #entries[position][1] + 1 <= MAX_DATAGRAM) do
        parts[#parts + 1] = entries[position][1]
        size = size + #entries[position][1] + 1
        position = position + 1
    end
    local ok, err = send(table.concat(parts, "\n") .. "\n")
    if not ok then return nil, err end
    return position
end

local function flush()
    if next(counts) == nil then return end
    -- The table of this round is set aside first: calls counted while a send waits go to the next.
    local batch = counts
    counts = {}
    local entries = {}
    for pool, statuses in pairs(batch) do
        for status, entry in pairs(statuses) do
            local line = string.format("%s %s %d %.3f %s", pool, status, entry.calls, entry.seconds,
                table.concat(entry.buckets, " "))
            entries[#entries + 1] = { line, pool, status, entry }
        end
    end
    local position = 1
    while position <= #entries do
        local after, err = send_from(entries, position)
        if not after then
            if err ~= problem then
                ngx.log(ngx.WARN, "calls: cannot send to the gateway's call log at ", target.host, ":",
                    target.port, " (kept for the next try): ", err)
                problem = err
            end
            for index = position, #entries do
                local unsent = entries[index]
                keep(unsent[2], unsent[3], unsent[4])
            end
            return
        end
        position = after
    end
    problem = nil
end

-- init_worker_by_lua: count this worker's calls and send them to options.host:options.port
-- (UDP) every options.interval seconds (FLUSH by default). options.token starts each datagram;
-- options.buckets are the gateway's histogram upper bounds in seconds, ascending, without +Inf.
function _M.start(options)
    target = options
    local ok, err = ngx.timer.every(options.interval or FLUSH, flush)
    if not ok then
        ngx.log(ngx.ERR, "calls: cannot start counting calls: ", err)
    end
end

return _M
