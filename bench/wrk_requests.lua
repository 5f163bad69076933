-- wrk 4.1 sends pre-built HTTP requests, each exactly once (bench/wrk_client.py writes them).
--
--   wrk -t T -c C -d S -s bench/wrk_requests.lua URL -- REQUESTS_FILE T C/T
--
-- REQUESTS_FILE holds records "<size>\n<size bytes of one whole HTTP request>". Thread i of T
-- (each wrk thread runs its own Lua state) serves records i, i + T, i + 2T ... in order; once
-- its share is out, a connection that asks for more gets "" (nothing is written, it waits),
-- and when every connection of the thread waits the thread stops and writes "done" to
-- stderr, so the caller can end wrk's sleep (SIGINT) instead of waiting out -d. A connection
-- whose request was lost (reset) reconnects and asks, so it counts as waiting too; so would
-- a waiting one the server closes (its keep-alive timeout) and wrk reopens, stopping the
-- thread early: its requests still out then show as "no answer". The two cannot be told
-- apart here: Lua sees neither which connection asks nor wrk's socket errors. So
-- api_load.py runs the API with a keep-alive timeout longer than any run (300 s): with the
-- default 5 s, batches answered in more than 5 s lost their last answers that way.
-- done() prints one JSON line: wrk's summary, the requests sent, the statuses seen, and the
-- raw latency histogram (see latency_histogram for why it is read through the FFI).

local ffi = require("ffi")

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

function init(args)
   local path, count = args[1], tonumber(args[2])
   per_thread = tonumber(args[3])  -- connections of this thread
   local file = assert(io.open(path, "rb"))
   requests, sent, waiting, statuses = {}, 0, 0, {}
   local n = 0
   while true do
      local size = file:read("*l")
      if not size then break end
      local record = file:read(tonumber(size))
      if n % count == id - 1 then table.insert(requests, record) end
      n = n + 1
   end
   file:close()
   -- wrk calls the first thread's request() once before the run, to check the request
   -- parses (script_verify_request in wrk.c); that answer is never sent.
   verifying = id == 1
end

function request()
   if verifying then
      verifying = false
      return requests[1] or wrk.format()
   end
   if sent < #requests then
      sent = sent + 1
      return requests[sent]
   end
   waiting = waiting + 1
   if waiting == per_thread then
      wrk.thread:stop()
      io.stderr:write("done\n")
   end
   return ""
end

function response(status)
   statuses[status] = (statuses[status] or 0) + 1
end

-- wrk 4.1 adds made-up samples to its latency histogram before done() ("coordinated omission"
-- correction, stats_correct in stats.c); the closed-loop httpx client reports raw latencies,
-- so the histogram is read as it is (count, limit, min, max, data[]: stats.h) and the caller
-- undoes the correction, which only depends on the summary.
local function latency_histogram(latency)
   local stats = ffi.cast("uint64_t **", latency)[0]
   local entries = {}
   if stats[0] > 0 then
      for value = tonumber(stats[2]), tonumber(stats[3]) do
         local n = stats[4 + value]
         if n > 0 then table.insert(entries, string.format("[%d,%d]", value, tonumber(n))) end
      end
   end
   return "[" .. table.concat(entries, ",") .. "]"
end

function done(summary, latency, _)
   local total_sent, all_statuses = 0, {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      for status, n in pairs(thread:get("statuses")) do
         all_statuses[status] = (all_statuses[status] or 0) + n
      end
   end
   local seen = {}
   for status, n in pairs(all_statuses) do
      table.insert(seen, string.format('"%d":%d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      '{"duration_us":%d,"requests":%d,"sent":%d,"errors":{"connect":%d,"read":%d,'
         .. '"write":%d,"timeout":%d},"statuses":{%s},"latency_us":%s}\n',
      summary.duration, summary.requests, total_sent, e.connect, e.read, e.write, e.timeout,
      table.concat(seen, ","), latency_histogram(latency)))
end
