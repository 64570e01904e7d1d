// Fuzz target: what another node (or anyone who can send CLUSTER LATTICE-GOSSIP) hands a
// cluster node: a topology view and the sender's failure reports (Cluster::OnGossip,
// ClusterTopology::Decode and Cluster::OnHealth). The input is the view, a NUL byte, then the
// reports. The node knows two other nodes beforehand, so reports may name known ids; its clock
// then moves on through a few ticks (failure detection runs).
// Checked, besides "never crashes, never asserts": a view that is taken in leaves a topology
// whose text form decodes back to itself, and the node's own record stays in it.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cluster/cluster.h"

namespace lattice::fuzz {
namespace {

class StepClock final : public server::Clock {
 public:
  int64_t NowMs() const override { return now_us / 1000; }
  int64_t NowUs() const override { return now_us; }
  int64_t MonotonicUs() const override { return now_us; }
  int64_t now_us = 1'000'000'000;
};

const std::string kMe(40, 'a');

std::string KnownView() {
  std::string view = "lattice-cluster 1\nepoch 2\n";
  view += "node " + std::string(40, 'b') + " s1 eu 127.0.0.1 7002 1\n";
  view += "node " + std::string(40, 'c') + " s2 us 127.0.0.1 7003 1\n";
  view += "slots 0 8191 1 s1\nslots 8192 16383 2 s2\n";
  return view;
}

}  // namespace
}  // namespace lattice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lattice;
  using namespace lattice::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view view = input.substr(0, nul);
  const std::string_view health = nul == std::string_view::npos ? "" : input.substr(nul + 1);
  server::Keyspace keyspace(/*replica=*/7, /*databases=*/1);
  StepClock clock;
  Rng rng(1);
  server::Cluster cluster(
      keyspace, clock, rng,
      {.enabled = true, .shard_id = "s1", .region = "eu", .port = 7001, .node_timeout_ms = 200});
  if (!cluster.Load(nullptr, "nodes.conf", kMe, clock.NowMs()).ok()) std::abort();
  if (!cluster.OnGossip(KnownView(), "", false, clock.NowMs()).ok()) std::abort();
  const bool meet = health.size() % 2 == 1;  // lifts a FORGET ban of the sender
  // The input as a gossip reply too: the view, then the replier's reports.
  const auto [reply_view, reply_health] = server::SplitGossipReply(input);
  if (reply_view.size() + reply_health.size() != input.size()) std::abort();
  (void)server::ClusterTopology::Decode(reply_view);
  const bool taken = cluster.OnGossip(view, health, meet, clock.NowMs()).ok();
  for (int i = 0; i < 4; ++i) {
    clock.now_us += 150'000;
    cluster.Tick(clock.NowMs());
  }
  if (cluster.topology().FindNode(kMe) == nullptr) std::abort();
  if (taken) {
    Result<server::ClusterTopology> back =
        server::ClusterTopology::Decode(cluster.topology().Encode());
    if (!back.ok() || !(*back == cluster.topology())) std::abort();
  }
  for (const auto& [id, node] : cluster.topology().nodes()) {
    (void)cluster.FailureReports(id);
    (void)cluster.Serving(node.shard);
  }
  return 0;
}
