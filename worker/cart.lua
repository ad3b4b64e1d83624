--  cart.lua - one cart mutation as one atomic Redis call
--
--  KEYS[1]  cart:{USER}            hash: item id -> "QUANTITY:PRICE:NAME"
--  KEYS[2]  cart:{USER}:rid:HEX    only when the request has a request_id
--  ARGV     method (2 add, 3 remove, 4 update, 5 clear), item id,
--           quantity, price, name, max quantity, max items, rid ttl (s)
--
--  Returns {200, record, replayed} where record is
--  "METHOD:QUANTITY:ITEM_ID", all the worker needs to build the reply; a
--  replayed record is the first reply to that request_id. Otherwise
--  returns {status, reason}: 1 too many items, 2 quantity too large,
--  3 item not in cart, 4 unknown method. A refusal changes nothing.
--
--  Quantities stay far below 2^53, so Lua's doubles hold them exactly;
--  prices pass through as the decimal strings the worker sent. Strings are
--  only joined with .. (string.format %s would stop at a NUL byte).

local cart = KEYS[1]
local rid = KEYS[2]
local method = tonumber(ARGV[1])
local item = ARGV[2]
local quantity = tonumber(ARGV[3])
local max_quantity = tonumber(ARGV[6])
local max_items = tonumber(ARGV[7])

if rid then
    local record = redis.call('GET', rid)
    if record then
        return {200, record, 1}
    end
end

--  A stored value is QUANTITY:PRICE:NAME; a value without a colon makes
--  string.sub fail, which aborts the script before anything is written.
local function colon_of (value)
    return string.find(value, ':', 1, true)
end

local new_quantity = 0
if method == 2 then
    local value = redis.call('HGET', cart, item)
    if value then
        local colon = colon_of(value)
        new_quantity = tonumber(string.sub(value, 1, colon - 1)) + quantity
        if new_quantity > max_quantity then
            return {409, 2}
        end
    else
        if redis.call('HLEN', cart) >= max_items then
            return {409, 1}
        end
        new_quantity = quantity
    end
    redis.call('HSET', cart, item,
               string.format('%d:', new_quantity) .. ARGV[4] .. ':' .. ARGV[5])
elseif method == 3 then
    if redis.call('HDEL', cart, item) == 0 then
        return {404, 3}
    end
elseif method == 4 then
    if quantity == 0 then
        if redis.call('HDEL', cart, item) == 0 then
            return {404, 3}
        end
    else
        local value = redis.call('HGET', cart, item)
        if not value then
            return {404, 3}
        end
        local colon = colon_of(value)
        redis.call('HSET', cart, item,
                   string.format('%d', quantity) .. string.sub(value, colon))
        new_quantity = quantity
    end
elseif method == 5 then
    redis.call('DEL', cart)
else
    return {400, 4}
end

local record = string.format('%d:%d:', method, new_quantity) .. item
if rid then
    redis.call('SET', rid, record, 'EX', ARGV[8])
end
return {200, record, 0}
