// Placeholder until the replication issue lands: keeps lattice_repl a real static library so the
// layer order is already enforced by the build.
namespace lattice::repl {
int PlaceholderProtocolVersion() { return 1; }
}  // namespace lattice::repl
