"""The printed table (Markdown, so a run's figures paste into bench/README.md as they are)."""

from __future__ import annotations

from typing import Any


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _name(r: dict[str, Any]) -> str:
    if r["system"] == "switchboard":
        return f"Switchboard, {r['store']}, {r['workers']} worker proc"
    return f"LangGraph, {r['store']}"


def roundtrip(rows: list[dict[str, Any]], n: int) -> str:
    head = [
        "system",
        "msg→paused thr/s",
        "p50 ms",
        "p99 ms",
        "approval→done thr/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/thread",
        "round trips/thread",
        "Redis cmds/thread",
        "bytes/thread",
    ]
    body = [
        [
            _name(r),
            r["phase1"]["throughput"],
            r["phase1"]["p50_ms"],
            r["phase1"]["p99_ms"],
            r["phase2"]["throughput"],
            r["phase2"]["p50_ms"],
            r["phase2"]["p99_ms"],
            r.get("worker_cpu_ms_per_thread", "—"),
            r.get("round_trips_per_thread", "—"),
            r.get("redis_commands_per_thread", "—"),
            r.get("bytes_per_thread", "—"),
        ]
        for r in rows
    ]
    out = [f"### Approval round trip, {n} threads", _table(head, body)]
    peers = [r for r in rows if r["system"] == "langgraph"]
    ours = [r for r in rows if r["system"] == "switchboard"]
    if peers and ours:
        head = [
            "Switchboard / LangGraph",
            *(f"phase 1 vs {p['store']}" for p in peers),
            *(f"phase 2 vs {p['store']}" for p in peers),
        ]
        body = []
        for r in ours:
            cells: list[Any] = [_name(r)]
            for phase in ("phase1", "phase2"):
                for p in peers:
                    ratio = r[phase]["throughput"] / p[phase]["throughput"]
                    cells.append(f"{ratio:.2f}x")
            body.append(cells)
        out += ["", "Throughput ratios:", _table(head, body)]
    spread = [r for r in ours if r.get("shards")]
    if spread:
        out += ["", "Work per shard (cluster runs):", shards(ours)]
    return "\n".join(out)


def shards(rows: list[dict[str, Any]]) -> str:
    """Each server's commands and CPU per thread, and how the threads fell on the partitions:
    single servers beside clusters."""
    head = [
        "system",
        "server",
        "Redis cmds/thread",
        "server CPU ms/thread",
        "threads per partition (min / max of n)",
    ]
    body = []
    for r in rows:
        parts = r.get("threads_per_partition") or [0]
        share = f"{min(parts)} / {max(parts)} of {len(parts)}"
        for shard in r.get("shards") or [
            {
                "node": "one server",
                "redis_commands_per_thread": r["redis_commands_per_thread"],
                "server_cpu_ms_per_thread": r.get("server_cpu_ms_per_thread", "—"),
            }
        ]:
            body.append(
                [
                    _name(r),
                    shard["node"],
                    shard["redis_commands_per_thread"],
                    shard["server_cpu_ms_per_thread"],
                    share,
                ]
            )
    return _table(head, body)


def render(result: dict[str, Any]) -> str:
    parts = [f"## Switchboard benchmarks, {result['date']}, {result['machine']['cpus']} CPUs"]
    if "roundtrip" in result:
        parts.append(roundtrip(result["roundtrip"], result["threads"]))
    if "overhead" in result:
        o = result["overhead"]
        parts.append(
            f"### Framework overhead per agent step ({o['store']}, one thread at a time)\n"
            + _table(
                ["run to pause p50 / p99 ms", "run to done p50 / p99 ms", "decide CPU p50 ms"],
                [
                    [
                        f"{o['run_to_pause_p50_ms']} / {o['run_to_pause_p99_ms']}",
                        f"{o['run_to_done_p50_ms']} / {o['run_to_done_p99_ms']}",
                        o["decide_cpu_p50_ms"],
                    ]
                ],
            )
            + f"\n{o['note']}"
        )
    if "telemetry" in result:
        t = result["telemetry"]
        parts.append(
            f"### Observability cost per approval round trip ({t['store']}, one thread at a time)\n"
            + _table(
                ["setup", "CPU ms p50", "CPU ms mean", "vs off, ms", "round trips"],
                [
                    [
                        r["setup"],
                        r["cpu_p50_ms"],
                        r["cpu_mean_ms"],
                        r["vs_off_ms"],
                        r["round_trips"],
                    ]
                    for r in t["rows"]
                ],
            )
        )
    if "long" in result:
        rows = result["long"]["rows"]
        parts.append(
            f"### Long threads ({result['long']['store']})\n"
            + _table(
                [
                    "events",
                    "stored bytes",
                    "bytes/event",
                    "render ms",
                    "load ms",
                    "resume ms",
                    "resume µs/event",
                    "context tokens / budget",
                    "turns compacted",
                ],
                [
                    [
                        r["events"],
                        r["stored_bytes"],
                        r["bytes_per_event"],
                        r["render_ms"],
                        r["load_ms"],
                        r["resume_ms"],
                        r["resume_us_per_event"],
                        f"{r.get('context_tokens', '-')} / {r.get('budget', '-')}",
                        r.get("compacted_turns", "-"),
                    ]
                    for r in rows
                ],
            )
        )
    if result.get("tokens"):
        parts.append(
            "### Context tokens (o200k_base): rendered context vs chat-messages JSON\n"
            + _table(
                [
                    "events",
                    "ours (thread)",
                    "messages JSON (thread)",
                    "ratio",
                    "ours (with system)",
                    "messages JSON (with system)",
                    "ratio",
                ],
                [
                    [
                        r["events"],
                        r["ours_thread"],
                        r["messages_json_thread"],
                        r["thread_ratio"],
                        r["ours_total"],
                        r["messages_json_total"],
                        r["total_ratio"],
                    ]
                    for r in result["tokens"]
                ],
            )
        )
    if "ingest" in result:
        rows = result["ingest"]["rows"]
        parts.append(
            f"### Webhook ingest ({result['ingest']['store']}; `main.py api`, "
            f"{result['ingest'].get('api_processes', 1)} API process(es), load from "
            "another process)\n"
            + _table(
                [
                    "channel",
                    "rate req/s",
                    "sent",
                    "accepted/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "errors",
                    "dropped",
                    "API CPU ms/req",
                ],
                [
                    [
                        r["target"],
                        r["rate"],
                        r["sent"],
                        r["accepted_per_s"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["max_ms"],
                        r["errors"] or 0,
                        r["dropped"],
                        r.get("api_cpu_ms", "-"),
                    ]
                    for r in rows
                ],
            )
        )
    for note in result.get("notes", []):
        parts.append(f"Note: {note}")
    return "\n\n".join(parts)
