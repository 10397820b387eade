-- wrk script for the shop's load test: every request is a GET of a path picked at random
-- from the file named by $SHOP_PATHS (one path a line; the load test writes it with as many
-- customer paths as order paths, so the mix is half GET customer, half GET order).
local paths = {}
local file = assert(io.open(assert(os.getenv("SHOP_PATHS"), "SHOP_PATHS is not set"), "r"))
for line in file:lines() do
  if #line > 0 then paths[#paths + 1] = line end
end
file:close()
assert(#paths > 0, "no paths in " .. os.getenv("SHOP_PATHS"))

-- Each wrk thread has its own Lua state: give each its own random sequence.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
