// The slow log, the latency monitor and histograms (server/slowlog.h, server/latency.h) on their
// own, then SLOWLOG, LATENCY, MEMORY USAGE and INFO latencystats through a server.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "server/latency.h"
#include "server/slowlog.h"
#include "server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

std::vector<std::string_view> Views(const std::vector<std::string>& args) {
  return {args.begin(), args.end()};
}

TEST_CASE("slow log arguments are trimmed as Valkey trims them", "[observability]") {
  std::vector<std::string> args;
  for (int i = 0; i < 40; ++i) args.push_back("a" + std::to_string(i));
  args[1] = std::string(200, 'x');
  const std::vector<std::string_view> views = Views(args);
  const std::vector<std::string> argv = SlowLogArgv(views);
  REQUIRE(argv.size() == 32);
  CHECK(argv[0] == "a0");
  CHECK(argv[1] == std::string(128, 'x') + "... (72 more bytes)");
  CHECK(argv[30] == "a30");
  CHECK(argv[31] == "... (9 more arguments)");  // 40 - 32 + 1: the 32nd slot is the note

  const std::vector<std::string> exact(32, "v");  // 32 arguments: no note
  CHECK(SlowLogArgv(Views(exact)).back() == "v");
  const std::vector<std::string> edge = {std::string(128, 'y')};  // 128 bytes: kept whole
  CHECK(SlowLogArgv(Views(edge))[0] == std::string(128, 'y'));

  const std::vector<std::string> auth = {"AUTH", "user", "secret"};
  CHECK(SlowLogArgv(Views(auth), 0b110) ==
        std::vector<std::string>{"AUTH", "(redacted)", "(redacted)"});
}

TEST_CASE("the slow log keeps the newest max-len entries, ids counting on", "[observability]") {
  SlowLog log;
  log.set_max_len(3);
  for (int i = 0; i < 5; ++i) log.Add({.duration_us = i});
  REQUIRE(log.size() == 3);
  CHECK(log.entries()[0].id == 4);
  CHECK(log.entries()[2].id == 2);
  log.set_max_len(1);
  CHECK(log.size() == 1);
  CHECK(log.entries()[0].id == 4);
  log.Reset();
  CHECK(log.size() == 0);
  log.Add({});
  CHECK(log.entries()[0].id == 5);  // RESET does not restart the ids
}

TEST_CASE("latency histogram buckets as HdrHistogram with two significant figures",
          "[observability]") {
  LatencyHistogram histogram;
  CHECK(histogram.total() == 0);
  CHECK(histogram.ValueAtPercentile(50) == 0);
  for (int i = 0; i < 98; ++i) histogram.Record(1000);  // 1 us, clamped to 1024 ns
  histogram.Record(5000);                               // 5 us
  histogram.Record(40'000);                             // 40 us
  CHECK(histogram.total() == 100);
  CHECK(histogram.ValueAtPercentile(50) == 1031);     // 1024's sub-bucket is 8 ns wide
  CHECK(histogram.ValueAtPercentile(99) == 5023);     // 4992..5023
  CHECK(histogram.ValueAtPercentile(100) == 40'191);  // 39936..40191
  std::vector<std::pair<uint64_t, uint64_t>> buckets;
  histogram.ForEachBucket(
      [&](uint64_t usec, uint64_t cumulative) { buckets.emplace_back(usec, cumulative); });
  // Levels 1024, 2048, 4096, 8192 ... ns report 1, 2, 4, 8, 16, 33, 66 us; only growth shows.
  const std::vector<std::pair<uint64_t, uint64_t>> expected = {{1, 98}, {8, 99}, {66, 100}};
  CHECK(buckets == expected);
  histogram.Record(5'000'000'000);  // over a second: counted at the 1 s cap
  CHECK(histogram.ValueAtPercentile(100) >= 1'000'000'000);
}

TEST_CASE("the latency monitor keeps 160 seconds of worst samples", "[observability]") {
  LatencyMonitor monitor;
  monitor.Add("command", 100, 5);
  monitor.Add("command", 100, 9);  // the same second: the worst stays
  monitor.Add("command", 100, 7);
  const LatencyMonitor::Series* series = monitor.Find("command");
  REQUIRE(series != nullptr);
  CHECK(series->History().size() == 1);
  CHECK(series->latest().latency_ms == 9);
  CHECK(series->max_ms == 9);
  CHECK(series->sum_ms == 21);
  CHECK(series->count == 3);
  for (int64_t s = 101; s < 300; ++s) monitor.Add("command", s, 1);
  const std::vector<LatencySample> history = monitor.Find("command")->History();
  REQUIRE(history.size() == LatencyMonitor::kHistoryLen);
  CHECK(history.front().time_s == 300 - 160);  // oldest first
  CHECK(history.back().time_s == 299);
  CHECK(monitor.Find("command")->max_ms == 9);
  CHECK(monitor.Reset("COMMAND") == 1);
  CHECK(monitor.Find("command") == nullptr);
  CHECK(monitor.Reset("command") == 0);
}

TEST_CASE("LATENCY GRAPH and DOCTOR render the samples", "[observability]") {
  LatencyMonitor monitor;
  CHECK_THAT(LatencyDoctor(monitor, 0, 0, 10000, 128), Catch::Contains("disabled"));
  CHECK_THAT(LatencyDoctor(monitor, 0, 5, 10000, 128), Catch::Contains("No latency spike"));
  monitor.Add("command", 1000, 12);
  monitor.Add("command", 1010, 30);
  const std::string graph = LatencyGraph("command", *monitor.Find("command"), 1020);
  CHECK_THAT(graph, Catch::StartsWith("command - high 30 ms, low 12 ms (all time high 30 ms)\n" +
                                      std::string(80, '-') + "\n"));
  CHECK_THAT(graph, Catch::Contains("2"));  // "20s" written downwards
  const std::string doctor = LatencyDoctor(monitor, 1020, 5, 10000, 128);
  CHECK_THAT(doctor, Catch::Contains("1. command: 2 latency spikes (average 21ms, mean "
                                     "deviation 9ms, period 10.00 sec). Worst all time event "
                                     "30ms."));
  CHECK_THAT(doctor, Catch::Contains("slowlog-log-slower-than 5000"));
}

TEST_CASE("SLOWLOG records commands over the threshold", "[observability]") {
  TestServer t;
  CHECK(t.Run({"SLOWLOG", "LEN"}) == "0");
  CHECK(t.Run({"CONFIG", "SET", "slowlog-log-slower-than", "0"}) == "OK");
  CHECK(t.Run({"CLIENT", "SETNAME", "tester"}) == "OK");
  CHECK(t.Run({"SET", "k", std::string(130, 'v')}) == "OK");
  const RespValue entries = t.RunValue({"SLOWLOG", "GET", "1"});
  REQUIRE(entries.elements.size() == 1);
  const RespValue& entry = entries.elements[0];
  REQUIRE(entry.elements.size() == 6);
  CHECK(entry.elements[1].integer == t.clock().NowMs() / 1000);
  CHECK(entry.elements[2].integer == 0);  // the fake clock stands still
  CHECK(entry.elements[3].ToString() ==
        "[\"SET\", \"k\", \"" + std::string(128, 'v') + "... (2 more bytes)\"]");
  CHECK(entry.elements[4].text == t.client().addr);
  CHECK(entry.elements[5].text == "tester");
  // CONFIG SET, CLIENT SETNAME, SET, SLOWLOG GET 1; then the SLOWLOG LEN and the GETs.
  CHECK(t.Run({"SLOWLOG", "LEN"}) == "4");
  CHECK(t.RunValue({"SLOWLOG", "GET"}).elements.size() == 5);
  CHECK(t.RunValue({"SLOWLOG", "GET", "-1"}).elements.size() == 6);
  CHECK(t.Run({"SLOWLOG", "GET", "-2"}) ==
        "(error) ERR count should be greater than or equal to -1");
  CHECK(t.Run({"AUTH", "nobody", "secret"}).starts_with("(error)"));
  CHECK(t.RunValue({"SLOWLOG", "GET", "1"}).elements[0].elements[3].ToString() ==
        "[\"AUTH\", \"(redacted)\", \"(redacted)\"]");
  CHECK(t.Run({"CONFIG", "SET", "slowlog-max-len", "2"}) == "OK");
  CHECK(t.Run({"SLOWLOG", "LEN"}) == "2");
  CHECK(t.Run({"SLOWLOG", "RESET"}) == "OK");
  CHECK(t.Run({"SLOWLOG", "LEN"}) == "1");  // the RESET itself, logged after it ran
  CHECK(t.Run({"CONFIG", "SET", "slowlog-log-slower-than", "-1"}) == "OK");
  CHECK(t.Run({"SLOWLOG", "RESET"}) == "OK");
  CHECK(t.Run({"GET", "k"}).size() > 0);
  CHECK(t.Run({"SLOWLOG", "LEN"}) == "0");
}

TEST_CASE("LATENCY HISTOGRAM and INFO latencystats report tracked commands", "[observability]") {
  TestServer t;
  t.client().protocol = Protocol::kResp3;  // maps shown as maps
  CHECK(t.Run({"SET", "k", "v"}) == "OK");
  CHECK(t.Run({"SET", "k", "w"}) == "OK");
  CHECK(t.Run({"LATENCY", "HISTOGRAM", "set", "nosuchcommand"}) ==
        "{\"set\": {\"calls\": 2, \"histogram_usec\": {1: 2}}}");
  CHECK(t.Run({"LATENCY", "HISTOGRAM", "get"}) == "{}");
  const std::string info = t.RunValue({"INFO", "latencystats"}).text;
  CHECK_THAT(info, Catch::Contains("latency_percentiles_usec_set:p50=1.031,p99=1.031,"
                                   "p99.9=1.031\r\n"));
  CHECK(t.Run({"CONFIG", "SET", "latency-tracking", "no"}) == "OK");
  CHECK(t.Run({"SET", "k", "x"}) == "OK");
  CHECK(t.Run({"LATENCY", "HISTOGRAM", "set"}) ==
        "{\"set\": {\"calls\": 2, \"histogram_usec\": {1: 2}}}");
  CHECK(t.Run({"LATENCY", "LATEST"}) == "[]");  // latency-monitor-threshold is 0: off
  CHECK(t.Run({"LATENCY", "RESET"}) == "0");
  CHECK(t.Run({"LATENCY", "GRAPH", "command"}) ==
        "(error) ERR No samples available for event 'command'");
}

TEST_CASE("MEMORY USAGE grows with the value and is null for a missing key", "[observability]") {
  TestServer t;
  CHECK(t.Run({"MEMORY", "USAGE", "missing"}) == "(nil)");
  CHECK(t.Run({"SET", "small", "v"}) == "OK");
  CHECK(t.Run({"SET", "large", std::string(10000, 'v')}) == "OK");
  const int64_t small = t.RunValue({"MEMORY", "USAGE", "small"}).integer;
  const int64_t large = t.RunValue({"MEMORY", "USAGE", "large", "SAMPLES", "0"}).integer;
  CHECK(small > 20);
  CHECK(small < 100);
  CHECK(large >= 10000);
  CHECK(large < 12000);
  // A hash in the full CRDT form counts what its state allocates.
  std::vector<std::string> hset = {"HSET", "h"};
  for (int i = 0; i < 1000; ++i) {
    hset.push_back("field" + std::to_string(i));
    hset.push_back(std::string(20, 'x'));
  }
  CHECK(t.Run(hset) == "1000");
  CHECK(t.RunValue({"MEMORY", "USAGE", "h"}).integer > 1000 * 40);
  CHECK(t.Run({"MEMORY", "USAGE", "small", "SAMPLES"}) == "(error) ERR syntax error");
  CHECK(t.Run({"MEMORY", "USAGE", "small", "SAMPLES", "x"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"MEMORY", "USAGE", "small", "SAMPLES", "-1"}) == "(error) ERR syntax error");
  const RespValue stats = t.RunValue({"MEMORY", "STATS"});
  REQUIRE(stats.elements.size() % 2 == 0);
  std::vector<std::string> names;
  for (size_t i = 0; i < stats.elements.size(); i += 2) names.push_back(stats.elements[i].text);
  for (const char* name :
       {"peak.allocated", "total.allocated", "startup.allocated", "overhead.total", "keys.count",
        "dataset.bytes", "fragmentation", "db.0"}) {
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
  }
  CHECK_THAT(t.RunValue({"MEMORY", "DOCTOR"}).text, Catch::Contains("Sam"));
}

TEST_CASE("CLIENT LIST shows watches, the transaction and the client's totals", "[observability]") {
  TestServer t;
  const size_t observer = t.AddClient();  // client 0 may be inside MULTI: another one looks
  auto field = [&](const std::string& name) {
    const std::string list = t.RunValue({"CLIENT", "LIST"}, observer).text;
    const size_t line = list.find("id=" + std::to_string(t.client(0).id) + " ");
    REQUIRE(line != std::string::npos);
    const size_t at = list.find(" " + name + "=", line);
    REQUIRE(at != std::string::npos);
    const size_t start = at + name.size() + 2;
    return list.substr(start, list.find_first_of(" \n", start) - start);
  };
  CHECK(field("watch") == "0");
  CHECK(field("multi") == "-1");
  CHECK(field("flags") == "N");
  CHECK(t.Run({"WATCH", "a", "b"}) == "OK");
  CHECK(field("watch") == "2");
  CHECK(t.Run({"MULTI"}) == "OK");
  CHECK(t.Run({"SET", "a", "1234567890"}) == "QUEUED");
  CHECK(field("multi") == "1");
  CHECK(field("flags") == "x");
  CHECK(field("multi-mem") == "14");  // SET a 1234567890
  CHECK(t.Run({"DISCARD"}) == "OK");
  CHECK(field("tot-cmds") == "3");  // WATCH, MULTI, DISCARD: a queued command has not run
  CHECK(std::stoul(field("tot-mem")) >= sizeof(ClientState));
  CHECK(field("tot-net-in") == "0");  // no socket here: the network layer counts bytes
}

}  // namespace
}  // namespace lattice::server
