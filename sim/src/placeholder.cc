// Placeholder until the simulator issue lands: keeps lattice_sim a real static library so the
// layer order (sim links server core, replication and crdt) is already enforced by the build.
namespace lattice::sim {
int PlaceholderRegionsMax() { return 8; }
}  // namespace lattice::sim
