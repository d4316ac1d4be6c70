"""Changes under load, side by side: a rolling update and an update that never gets ready, through
this stack and through faas-swarm.

The same function (the classic watchdog test image answering its version, two replicas, the
autoscaler kept off by min = max) is deployed on each path: through the stack's gateway and
called through its nginx (`make up`), and through the Go provider faas-swarm 0.9.1 run as a peer
service (as bench/invoke.py runs it). Its readiness probe is `GET /` (which runs the function)
every second; the watchdog drains on SIGTERM (images/watchdog/entrypoint.sh, drain=1). While 16
clients call it in a loop, each scenario sends the update as faas-cli does (PUT /system/functions):

  rolling   `echo v1` to `echo v2`
  failing   `echo v1` to a handler that fails every call (exit 1); the stack rolls it back

and prints per path: calls sent and failed (connection errors included), clients that got the old
version again after the new one, seconds until every answer was the new version (rolling) or
until the update was given up and the old spec back (failing), and seconds until Swarm's update
was over. A path that does not recover within --patience seconds is reported as such. Everything
it creates is removed at the end, on failure and on Ctrl-C.

    .venv/bin/python -m bench.rollout [--paths stack,faas-swarm] [--scenarios rolling,failing] [--patience 90]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

from bench.common import call, cleanly, stack_auth, wait_until
from bench.invoke import FUNCTIONS_NETWORK, PEER, Setup, load
from harness import ROOT, docker
from harness.cluster import Load

IMAGE = "faas-test/classic-watchdog:latest"
PATHS = ("stack", PEER)
SCENARIOS = {"rolling": ("echo v1", "echo v2"), "failing": ("echo v1", "echo broken >&2; exit 1")}
LABELS = {
    "com.openfaas.scale.min": "2", "com.openfaas.scale.max": "2",
    "com.openfaas.ready.http.path": "/", "com.openfaas.ready.http.periodSeconds": "1",
}
ENV = {"drain": "1", "write_timeout": "4s"}
CLIENTS = 16


@dataclass
class Result:
    sent: int = 0
    failed: int = 0
    flipped_back: int = 0
    recovered: float | None = None  # seconds after the update: all answers new, or the old spec back
    update_over: float | None = None  # seconds after the update until Swarm's update ended
    note: str = ""


def _body(name: str, handler: str) -> dict:
    return {"service": name, "image": IMAGE, "network": FUNCTIONS_NETWORK, "labels": LABELS,
            "envVars": {**ENV, "handler": handler}}


def _update_state(name: str) -> str:
    found = docker("service", "inspect", name, "--format", "{{json .UpdateStatus}}", check=False).strip()
    return (json.loads(found) or {}).get("State", "") if found and found != "null" else ""


def _containers(name: str) -> int:
    return len(docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}").split())


def _answers(url: str) -> str:
    status, body, _ = call(url, "POST", b"x", timeout=10)
    return body.decode().strip() if status == 200 else ""


def run(path: str, base: str, auth: dict, name: str, scenario: str, patience: float) -> Result:
    """Deploy ``name`` at its first version, then update it under load; measure."""
    first, second = SCENARIOS[scenario]
    status, text, _ = call(f"{base}/system/functions", "POST", _body(name, first), auth)
    if status not in (200, 202):
        raise SystemExit(f"{path} refused to deploy {name}: {status} {text!r}")
    # faas-swarm starts one replica whatever the labels say.
    call(f"{base}/system/scale-function/{name}", "POST", {"serviceName": name, "replicas": 2}, auth)
    url = f"{base}/function/{name}"
    wait_until(lambda: _containers(name) == 2 and all(_answers(url) == "v1" for _ in range(20)), f"{name} at v1", 120)
    load = Load(url, clients=CLIENTS, limit=patience + 120, timeout=30).start()
    wait_until(lambda: len(load.outcomes) > 200, "the load to run", 60)
    updated = time.monotonic()
    status, text, _ = call(f"{base}/system/functions", "PUT", _body(name, second), auth)
    if status not in (200, 202):
        load.stop()
        raise SystemExit(f"{path} refused the update of {name}: {status} {text!r}")
    result = Result()
    deadline = updated + patience
    while time.monotonic() < deadline and (result.recovered is None or result.update_over is None):
        now = time.monotonic() - updated
        recent = [o for o in load.outcomes[-CLIENTS * 4:] if o.started > updated]
        if result.recovered is None and len(recent) >= CLIENTS * 4:
            wanted = "v2" if scenario == "rolling" else "v1"
            if all(o.ok and o.answer == wanted for o in recent) and (scenario == "rolling" or _rolled_back(name)):
                result.recovered = now
        if result.update_over is None and _update_state(name) in ("completed", "rollback_completed", "paused") \
                and _containers(name) == 2:
            result.update_over = now
        time.sleep(0.25)
    outcomes = load.stop()
    result.sent, result.failed = len(outcomes), len([o for o in outcomes if not o.ok])
    for answers in load.answers():
        first_new = next((i for i, answer in enumerate(answers) if answer != "v1"), len(answers))
        result.flipped_back += "v1" in answers[first_new:]
    if result.recovered is None:
        result.note = f"not recovered within {patience:g} s"
    return result


def _rolled_back(name: str) -> bool:
    """Whether the function's spec is the first version again (Swarm's service, either path)."""
    env = docker("service", "inspect", name, "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}")
    return "handler=echo v1" in json.loads(env)


def table(results: dict) -> str:
    lines = [
        "| scenario | path | calls | failed | clients back on v1 | recovered s | update over s | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, path), r in results.items():
        recovered = f"{r.recovered:.1f}" if r.recovered is not None else "–"
        over = f"{r.update_over:.1f}" if r.update_over is not None else "–"
        lines.append(f"| {scenario} | {path} | {r.sent} | {r.failed} | {r.flipped_back} | {recovered} | {over} | {r.note} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="this stack's URL (nginx)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated: stack,faas-swarm")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: rolling,failing")
    parser.add_argument("--patience", type=float, default=90, help="seconds a path gets to recover")
    args = parser.parse_args(argv)
    args.paths = [p for p in args.paths.split(",") if p]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    for value in args.paths:
        if value not in PATHS:
            parser.error(f"unknown path {value}: choose from {', '.join(PATHS)}")
    for value in args.scenarios:
        if value not in SCENARIOS:
            parser.error(f"unknown scenario {value}: choose from {', '.join(SCENARIOS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    auth = stack_auth(ROOT / ".credentials") if "stack" in args.paths else {}
    # The peer and the test images as bench.invoke sets them up; no function of its own.
    setup = Setup(args.gateway.rstrip("/"), auth, [], [p for p in args.paths if p == PEER])
    print(f"# bench.rollout {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {os.cpu_count()} cores, {load()}", flush=True)
    results = {}
    with cleanly(setup.close):
        setup.start()
        bases = {"stack": (setup.gateway, auth), PEER: (setup.peer_url, {})}
        for scenario in args.scenarios:
            for path in args.paths:
                name = f"bench-{setup.run_id}-{scenario[:4]}-{'st' if path == 'stack' else 'fs'}"
                base, path_auth = bases[path]
                if path == "stack":
                    setup.stack_functions[f"{scenario}-{path}"] = name
                setup.services.append(name)
                results[(scenario, path)] = run(path, base, path_auth, name, scenario, args.patience)
                print(f"# {scenario} {path}: {results[(scenario, path)]}", flush=True)
        print(f"\n# {load()}\n{table(results)}", flush=True)


if __name__ == "__main__":
    main()
