"""Snapshot storms after restarts (issue 17, part 3), on real processes.

- SIGTERM stops a region within a second while it is sending a large snapshot under load.
- Three regions with set members, three kill -9s of a region under load, then quiet: the regions
  converge within 30 s of the last write, and no PING (from a process of its own, to every live
  region, throughout) takes 100 ms or more. Opt-in (LATTICE_STORM=1), at two sizes:
  LATTICE_STORM_SMALL elements (default 30,000, about 10 s, with a backlog bound small enough
  that the restarts need snapshots) and LATTICE_STORM_ELEMENTS (default 1,000,000: about 25 s
  on 2 cores).

What is measured is the servers, not the machine's scheduler: the writer (the load) runs in a
process of its own at nice 19, the PING probe in another at raised priority when the test may
raise it (root), and besides the probe's worst PING every region's own latency monitor
(latency-monitor-threshold 10 ms: commands, the op log write, snapshot slices, peer batches, the
replication tick) is read before each kill and at the end; its worst event, the convergence
time, the snapshots sent and installed and the machine's load average are printed. So is what
each step cost the event loop's thread in CPU time (INFO crdt_step_cpu_max_us: the tick, a
snapshot slice, a peer batch), which the machine's load does not inflate as it does wall time,
and the most items one snapshot slice held (crdt_slice_items_max); each CPU figure must stay
under CPU_STEP_BOUND_MS.
"""

import multiprocessing
import os
import random
import signal
import time
import unittest

import redis

from harness import (ServerProcess, digest, start_regions, wait_connected, wait_converged,
                     wait_until)

ELEMENTS = int(os.environ.get("LATTICE_STORM_ELEMENTS", "1000000"))
SMALL_ELEMENTS = int(os.environ.get("LATTICE_STORM_SMALL", "30000"))
SIGTERM_ELEMENTS = 200000
MEMBERS_PER_SET = 100
WRITES_BETWEEN_KILLS = 5000
# The regions' crdt-backlog-ops, and the writes the others take while one is down: more than the
# backlog, so it needs a snapshot when it returns. At 1M elements the backlog must also hold the
# initial load's 10,000 SADDs (with 2,000 the peers went stale during the load and the test
# measured snapshots of the load instead of the storm).
BACKLOG_OPS = 2000
WRITES_WHILE_DOWN = 3000
LARGE_BACKLOG_OPS = 20000
LARGE_WRITES_WHILE_DOWN = 25000
# What one step of the event loop's replication work may cost in CPU time (a few ms at most:
# issue 17, "never blocks the event loop for more than a few milliseconds at a time").
CPU_STEP_BOUND_MS = 10
SEED = int(os.environ.get("LATTICE_TEST_SEED", str(random.randrange(1 << 30))))


def load(server, sets, members, prefix="s"):
    """SADDs `members` members into each of `sets` sets, pipelined."""
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for s in range(sets):
        pipe.sadd(f"{prefix}:{s}", *[f"m{m}" for m in range(members)])
        if len(pipe) >= 200:
            pipe.execute()
    pipe.execute()


def ping_loop(ports, paused, stopping, worst, worst_at, count):
    """The probe's process: PINGs every live region in turn, keeps the slowest (a process of its
    own, so the writer's GIL never delays a PING)."""
    try:
        os.nice(-10)  # root only: the probe is scheduled ahead of the load, not behind it
    except PermissionError:
        pass
    clients = {}
    while not stopping.is_set():
        for i, port in enumerate(ports):
            if paused[i]:
                clients.pop(i, None)
                continue
            try:
                client = clients.get(i) or redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
                clients[i] = client
                start = time.monotonic()
                client.ping()
                took = time.monotonic() - start
            except (redis.ConnectionError, redis.TimeoutError):
                clients.pop(i, None)
                continue
            count.value += 1
            if took > worst.value:
                worst.value, worst_at.value = took, i
        time.sleep(0.002)


class PingProbe:
    """PINGs every live region from a process of its own, throughout; keeps the slowest."""

    def __init__(self, servers):
        self.paused = multiprocessing.Array("b", len(servers))
        self.stopping = multiprocessing.Event()
        self._worst = multiprocessing.Value("d", 0.0)
        self._worst_at = multiprocessing.Value("i", -1)
        self._count = multiprocessing.Value("q", 0)
        self.process = multiprocessing.Process(
            target=ping_loop, args=([s.port for s in servers], self.paused, self.stopping,
                                    self._worst, self._worst_at, self._count), daemon=True)

    worst = property(lambda self: self._worst.value)
    worst_at = property(lambda self: self._worst_at.value)
    count = property(lambda self: self._count.value)

    def __enter__(self):
        self.process.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.process.join(timeout=10)


def write_loop(ports, sets, seed, paused, stopping, writes, last_write):
    """The load's process, at nice 19: SADDs to random sets of the first load in every live
    region in turn until stopped (pipelines of 50)."""
    os.nice(19)
    rng = random.Random(seed)
    clients = {}
    n = 0
    while not stopping.is_set():
        i = n % len(ports)
        n += 1
        if paused[i]:
            clients.pop(i, None)
            time.sleep(0.001)
            continue
        try:
            client = clients.get(i) or redis.Redis(host="127.0.0.1", port=ports[i],
                                                   socket_timeout=10)
            clients[i] = client
            pipe = client.pipeline(transaction=False)
            for _ in range(50):
                pipe.sadd(f"s:{rng.randrange(sets)}", f"w{rng.randrange(1 << 20)}")
            pipe.execute()
            writes.value += 50
            last_write.value = time.monotonic()
        except (redis.ConnectionError, redis.TimeoutError):
            clients.pop(i, None)


class Writer:
    """The load: write_loop in a process of its own, at nice 19."""

    def __init__(self, servers, sets, seed):
        self.paused = multiprocessing.Array("b", len(servers))
        self.stopping = multiprocessing.Event()
        self._writes = multiprocessing.Value("q", 0)
        self._last_write = multiprocessing.Value("d", time.monotonic())
        self.process = multiprocessing.Process(
            target=write_loop, args=([s.port for s in servers], sets, seed, self.paused,
                                     self.stopping, self._writes, self._last_write), daemon=True)

    writes = property(lambda self: self._writes.value)
    last_write = property(lambda self: self._last_write.value)

    def stop(self):
        self.stopping.set()
        self.process.join(timeout=30)


def latency_latest(server):
    """{event: worst ms} from the region's own latency monitor (LATENCY LATEST)."""
    rows = server.client().execute_command("LATENCY", "LATEST")
    return {(row[0].decode() if isinstance(row[0], bytes) else row[0]): int(row[3])
            for row in rows}


def slowest_commands(server):
    """{command name: worst ms} from the slow log, but DEBUG: the test's own O(N) DEBUG DIGEST
    (the latency monitor's "command" event cannot tell it from a client's command)."""
    worst = {}
    for entry in server.client().slowlog_get(128):
        name = entry["command"].split(b" ")[0].decode().lower() if isinstance(
            entry["command"], bytes) else str(entry["command"]).split(" ")[0].lower()
        if name != "debug":
            worst[name] = max(worst.get(name, 0), entry["duration"] // 1000)
    return worst


def step_cpu(server):
    """{event: worst CPU ms of one step} and the most items of a snapshot slice, from INFO."""
    info = server.client().info("replication")
    steps = {}
    fields = info.get("crdt_step_cpu_max_us") or {}
    if not isinstance(fields, dict):  # redis-py parses "a=1,b=2" into a dict, but for one field
        fields = dict(part.partition("=")[::2] for part in str(fields).split(",") if part)
    for event, us in fields.items():
        steps[event + " cpu"] = int(us) / 1000.0
    steps["slice items"] = int(info.get("crdt_slice_items_max", 0))
    return steps


def snapshot_events(server):
    """(sent, installed, skipped) in the region's log since its last start."""
    log = server.read_log()
    return (log.count("snapshot_sent"), log.count("snapshot_installed"),
            log.count("snapshot_skipped"))


def same_vectors(servers):
    """Whether every region applied the same ops and holds none back (INFO replication)."""
    infos = [server.client().info("replication") for server in servers]
    return (len({str(info.get("crdt_applied")) for info in infos}) == 1 and
            all(int(info.get("crdt_buffered_ops", 0)) == 0 for info in infos))


def merge_worst(worst, events):
    for event, ms in events.items():
        worst[event] = max(worst.get(event, 0), ms)


class SnapshotStorm(unittest.TestCase):

    def test_sigterm_stops_a_region_sending_a_large_snapshot_within_a_second(self):
        b = ServerProcess("--region", "b")
        # A admits B's link: protected mode admits only configured peers.
        a = ServerProcess("--region", "a", "--enable-debug-command", "yes",
                          "--peer", f"127.0.0.1:{b.port + 10000}").start()
        try:
            load(a, SIGTERM_ELEMENTS // MEMBERS_PER_SET, MEMBERS_PER_SET)
            a.client().set("sentinel", "x")
            # B lacks everything: A sends it a snapshot of the whole state.
            b.args += ["--peer", f"127.0.0.1:{a.port + 10000}"]
            b.start()
            wait_until(lambda: "snapshot_sent" in a.read_log() or
                       b.client().exists("sentinel") or b.client().dbsize() > 0,
                       timeout=30, what="the snapshot to start")
            start = time.monotonic()
            a.proc.send_signal(signal.SIGTERM)
            a.proc.wait(timeout=10)
            took = time.monotonic() - start
            print(f"SIGTERM while sending a snapshot of {SIGTERM_ELEMENTS} elements: stopped in "
                  f"{took * 1000:.0f} ms (exit {a.proc.returncode})")
            self.assertLess(took, 1.0)
            start = time.monotonic()
            b.proc.send_signal(signal.SIGTERM)
            b.proc.wait(timeout=10)
            took = time.monotonic() - start
            print(f"SIGTERM of the receiver: stopped in {took * 1000:.0f} ms "
                  f"(exit {b.proc.returncode})")
            self.assertLess(took, 1.0)
        finally:
            a.cleanup()
            b.cleanup()

    @unittest.skipUnless(os.environ.get("LATTICE_STORM"),
                         "set LATTICE_STORM=1: three regions of 1,000,000 elements keep two "
                         "cores busy for about 25 s, and its PING bound needs a machine that "
                         "is not overloaded")
    def test_three_kill_9s_under_load_then_quiet_converge_without_stalls(self):
        self.storm(ELEMENTS, LARGE_BACKLOG_OPS, LARGE_WRITES_WHILE_DOWN)

    @unittest.skipUnless(os.environ.get("LATTICE_STORM"),
                         "set LATTICE_STORM=1: about 10 s, and its PING bound needs a machine "
                         "that is not overloaded")
    def test_three_kill_9s_under_load_then_quiet_small(self):
        self.storm(SMALL_ELEMENTS, BACKLOG_OPS, WRITES_WHILE_DOWN)

    def storm(self, elements, backlog_ops, writes_while_down):
        print(f"seed {SEED}, {elements} elements, load {os.getloadavg()}")
        rng = random.Random(SEED)
        regions = start_regions(3, "--appendfsync", "everysec",
                                "--latency-monitor-threshold", "10",
                                "--slowlog-log-slower-than", "10000",
                                "--crdt-backlog-ops", str(backlog_ops))
        worst_events = {}  # the servers' own latency monitors, over every process
        worst_commands = {}  # the servers' slow logs, DEBUG left out
        worst_cpu = {}  # CPU ms per step (and slice items), over every process
        snapshots = [0, 0, 0]  # sent, installed, skipped: from every process's log
        try:
            sets = elements // MEMBERS_PER_SET
            load(regions[0], sets, MEMBERS_PER_SET)
            wait_converged(regions, timeout=300)  # the storm starts from one state everywhere
            with PingProbe(regions) as probe:
                writer = Writer(regions, sets, SEED)
                writer.process.start()
                for kill in range(3):
                    victim = rng.randrange(3)
                    # Each kill comes under load: once the writer made progress since the last.
                    written = writer.writes
                    wait_until(lambda: writer.writes >= written + WRITES_BETWEEN_KILLS,
                               timeout=60, what="writes under load")
                    writer.paused[victim] = 1
                    probe.paused[victim] = 1
                    merge_worst(worst_events, latency_latest(regions[victim]))
                    merge_worst(worst_commands, slowest_commands(regions[victim]))
                    merge_worst(worst_cpu, step_cpu(regions[victim]))
                    snapshots = [a + b for a, b in zip(snapshots,
                                                       snapshot_events(regions[victim]))]
                    self.assertEqual(regions[victim].stop(signal.SIGKILL), -signal.SIGKILL)
                    # The others take more writes than the backlog holds: a snapshot on return.
                    written = writer.writes
                    wait_until(lambda: writer.writes >= written + writes_while_down, timeout=120,
                               what="writes while a region is down")
                    regions[victim].start(timeout=120)
                    probe.paused[victim] = 0
                    writer.paused[victim] = 0
                written = writer.writes
                wait_until(lambda: writer.writes >= written + WRITES_BETWEEN_KILLS, timeout=60,
                           what="writes under load")
                writer.stop()
                last_write = writer.last_write
                for server in regions:
                    wait_connected(server, 2, timeout=60)

                # Converged: every region applied the same ops, none waits in a buffer (a
                # region's applied vector rises only at the end of an install). Read from INFO,
                # not DEBUG DIGEST: a digest of 1M elements holds a region's event loop for a
                # second, and the probe would time the test's own command (the digests are
                # compared once the probe has stopped).
                wait_until(lambda: same_vectors(regions), timeout=60, interval=0.05,
                           what="regions to converge")
                converged = time.monotonic() - last_write
            self.assertEqual(len({digest(server) for server in regions}), 1)
            for server in regions:
                merge_worst(worst_events, latency_latest(server))
                merge_worst(worst_commands, slowest_commands(server))
                merge_worst(worst_cpu, step_cpu(server))
                snapshots = [a + b for a, b in zip(snapshots, snapshot_events(server))]
            sizes = {server.cli("dbsize")[1].strip() for server in regions}
            sent, installed, skipped = snapshots
            # The event loop's own work (op log, snapshot slices, peer batches, the tick) and
            # every client command but the test's DEBUG DIGEST.
            loop_events = {e: ms for e, ms in worst_events.items()
                           if e not in ("command", "fast-command")}
            server_worst = max(list(loop_events.values()) + list(worst_commands.values()),
                               default=0)
            print(f"{writer.writes} writes under load; converged {converged:.2f} s after the last "
                  f"write; worst PING {probe.worst * 1000:.1f} ms (region {probe.worst_at}, "
                  f"{probe.count} PINGs); the servers' latency monitors: worst {server_worst} ms "
                  f"{sorted(worst_events.items())}, slow log {sorted(worst_commands.items())}; "
                  f"worst CPU per step {sorted(worst_cpu.items())}; snapshots sent {sent}, "
                  f"installed {installed}, skipped {skipped} (every process's log); load "
                  f"{os.getloadavg()}")
            self.assertEqual(len(sizes), 1)
            for event, ms in worst_cpu.items():
                # A fork (the automatic op log rewrite) costs what Valkey's BGSAVE fork does
                # (page tables of the whole process): printed, not bounded here.
                if event.endswith(" cpu") and event != "fork cpu":
                    self.assertLess(ms, CPU_STEP_BOUND_MS, event)
            self.assertLess(converged, 30.0)
            self.assertLess(server_worst, 100)
            self.assertLess(probe.worst, 0.100)
        finally:
            # What every region's steps cost in CPU, printed whether the test passed or not (a 1M
            # run under load may fail on a wall-clock bound while its steps stay small).
            for i, server in enumerate(regions):
                try:
                    print(f"region {i}: worst CPU per step {sorted(step_cpu(server).items())}, "
                          f"snapshots sent/installed/skipped {snapshot_events(server)}")
                except (redis.RedisError, OSError, AttributeError) as error:
                    print(f"region {i}: not reachable ({error})")
            for server in regions:
                server.cleanup()

if __name__ == "__main__":
    unittest.main()
