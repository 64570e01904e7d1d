"""The churn phase (issue #17, part 1): three Lattice regions take per-window fresh names (a rate
limiter's INCR + PEXPIRE shared by every region; SET + DEL, SADD + SREM, HINCRBY + DEL,
ZINCRBY + ZREM in each), then go quiet. Reports used_memory per region at the start (after a
baseline dataset), right after the churn and after quiescence, and the in-memory op ring
(crdt_backlog_bytes); the target is quiescence within 10% of the start. Run it with
`scripts/bench --only churn`; not in the default phases (it is not a comparison with Redis)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from churn_load import backlog_bytes, churn, preload, used_memory, wait_back  # noqa: E402
from servers import start_lattice_regions, wait_caught_up  # noqa: E402
from harness import info_fields  # noqa: E402


def run(lattice, plan, log):
    servers = start_lattice_regions(lattice, 3, [None, None, None])
    try:
        clients = [server.client() for server in servers]
        wait_caught_up(servers, 30)
        preload(clients, plan["baseline_keys"])
        wait_caught_up(servers, 120)
        start = [used_memory(s) for s in servers]
        log(f"churn: start used_memory {start}")
        began = time.monotonic()
        sent = churn(clients, plan["windows"], plan["per_window"], plan["ttl_ms"], log)
        churn_s = time.monotonic() - began
        after = [used_memory(s) for s in servers]
        ring = [backlog_bytes(s) for s in servers]
        log(f"churn: {sent} commands in {churn_s:.1f} s; used_memory {after}, op ring {ring}")
        took, end = wait_back(servers, start, 0.10, plan["quiet_s"])
        caught_up = wait_caught_up(servers, 30)
        end = [used_memory(s) for s in servers]
        ring_end = [backlog_bytes(s) for s in servers]
        purged = [int(info_fields(s, "replication").get("crdt_purged_keys", "0"))
                  for s in servers]
        dbsize = [c.dbsize() for c in clients]
        log(f"churn: quiet after {took} s: used_memory {end}, op ring {ring_end}, "
            f"purged {purged}, DBSIZE {dbsize}, caught up {caught_up}")
        return {"commands": sent, "churn_s": churn_s, "start": start, "after_churn": after,
                "ring_after_churn": ring, "quiet": end, "ring_quiet": ring_end,
                "back_within_10pct_s": took, "purged_keys": purged, "dbsize": dbsize,
                "ratio_quiet_to_start": [e / s for e, s in zip(end, start)],
                "load": os.getloadavg()}
    finally:
        for server in servers:
            server.cleanup()
