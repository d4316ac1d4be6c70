-- nginx's routing table of function calls, changed without reloading nginx.
--
-- The gateway renders the table (app/dataplane/route_table.py, GET /_/routes/table);
-- deploy/nginx-routes.sh fetches it every second and, when it changed, hands it to load() on
-- nginx's loopback-only server. The table goes into the shared dictionary `routes`, and each
-- worker parses it again the first time it routes a call after a change. A reload would close
-- every idle kept-alive client connection, and a call a client sends on one at that moment is
-- lost: deploying a function must not cost other functions' callers anything.
--
-- The table, one entry per line ('#' starts a comment):
--   pool fn_<reference> <IPv4>:<port> ...   a function's ready tasks
--   name <key> fn_<reference>               $function_name (the path segment) -> its pool
-- A call of a name the table does not list goes to the gateway (pool `gateway_fallback`).
local balancer = require "ngx.balancer"

local shared = ngx.shared.routes
local FALLBACK = "gateway_fallback"
-- One refused or silent connection sets a task aside for this long (nginx's fail_timeout=2s).
local FAIL_TIMEOUT = 2

local _M = {}

-- This worker's copy of the table, and the shared version it was read at.
local names, pools, version = {}, {}, nil
-- Round robin: the pool's next position, per worker.
local turns = {}
-- address -> time until which it is set aside.
local failed_until = {}

-- names, pools from the table's text; nil and the reason for a table with a bad line.
local function parse(text)
    local parsed_names, parsed_pools = {}, {}
    local number = 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        number = number + 1
        local kind, key, rest = line:match("^(%l+) (%S+)(.*)$")
        if kind == "pool" and key:match("^fn_") then
            local peers = {}
            for address in rest:gmatch("%S+") do
                local host, port = address:match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
                if not host then
                    return nil, nil, "line " .. number .. ": not an IPv4 address and port: " .. address
                end
                peers[#peers + 1] = { host = host, port = tonumber(port), address = address }
            end
            if #peers == 0 then
                return nil, nil, "line " .. number .. ": pool " .. key .. " has no address"
            end
            parsed_pools[key] = peers
        elseif kind == "name" and rest:match("^ fn_%S+$") then
            parsed_names[key] = rest:sub(2)
        elseif line ~= "" and not line:match("^#") then
            return nil, nil, "line " .. number .. ": neither a pool nor a name"
        end
    end
    for key, pool in pairs(parsed_names) do
        if not parsed_pools[pool] then
            return nil, nil, "name " .. key .. " is routed to " .. pool .. ", which the table does not define"
        end
    end
    return parsed_names, parsed_pools
end

local function refresh()
    local current = shared:get("version")
    if current ~= version then
        -- Only tables parse() accepted are stored.
        names, pools = parse(shared:get("table") or "")
        version = current
        local now = ngx.now()
        for address, until_time in pairs(failed_until) do
            if until_time <= now then failed_until[address] = nil end
        end
    end
end

-- Content of POST /routes (loopback only): the new table as the body. 204 once stored; 400 with
-- the reason for a table it refuses, which leaves the running one in place.
function _M.load()
    ngx.req.read_body()
    local text = ngx.req.get_body_data() or ""
    local parsed, _, err = parse(text)
    if not parsed then
        ngx.status = ngx.HTTP_BAD_REQUEST
        ngx.say(err)
        return ngx.exit(ngx.HTTP_BAD_REQUEST)
    end
    local ok, set_err = shared:set("table", text)
    if not ok then
        ngx.status = ngx.HTTP_INTERNAL_SERVER_ERROR
        ngx.say("cannot store the table: ", set_err)
        return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
    end
    shared:incr("version", 1, 0)
    return ngx.exit(ngx.HTTP_NO_CONTENT)
end

-- $function_pool for $function_name: fn_<reference>, or gateway_fallback. The pool's tasks are
-- kept for the balancer, so a table changing in between cannot take them away from this call.
function _M.pool(name)
    refresh()
    local pool = names[name]
    if not pool then return FALLBACK end
    local ctx = ngx.ctx
    ctx.pool, ctx.peers = pool, pools[pool]
    return pool
end

-- balancer_by_lua of the upstream `functions`: the next task of $function_pool in turn, skipping
-- those set aside, and on a retry those this call already tried (the previous one is set aside).
function _M.balance()
    local ctx = ngx.ctx
    local peers = ctx.peers
    if not peers then
        -- A websocket, after its jump to a named location (which starts a new ngx.ctx).
        refresh()
        ctx.pool = ngx.var.function_pool
        peers = pools[ctx.pool]
        if not peers then return ngx.exit(ngx.HTTP_BAD_GATEWAY) end
        ctx.peers = peers
    end
    local tried = ctx.tried
    if tried then
        failed_until[ctx.last] = ngx.now() + FAIL_TIMEOUT
    else
        tried = {}
        ctx.tried = tried
        if #peers > 1 then balancer.set_more_tries(#peers - 1) end
    end
    local pool = ctx.pool
    local start = turns[pool] or 0
    local now = ngx.now()
    local chosen, fallback
    for step = 1, #peers do
        local peer = peers[(start + step - 1) % #peers + 1]
        if not tried[peer.address] then
            if (failed_until[peer.address] or 0) <= now then
                chosen = peer
                turns[pool] = (start + step) % #peers
                break
            end
            fallback = fallback or peer
        end
    end
    -- Every untried task set aside: try one anyway, as nginx does when all its servers failed.
    chosen = chosen or fallback
    if not chosen then return ngx.exit(ngx.HTTP_BAD_GATEWAY) end
    tried[chosen.address] = true
    ctx.last = chosen.address
    local ok, err = balancer.set_current_peer(chosen.host, chosen.port)
    if not ok then
        ngx.log(ngx.ERR, "routes: cannot route to ", chosen.address, ": ", err)
        return ngx.exit(ngx.HTTP_BAD_GATEWAY)
    end
end

return _M
