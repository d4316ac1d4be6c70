"""Where an invocation's time goes: CPU per call by component, and py-spy samples of the gateway.

Deploys one function through the stack, drives it with `wrk -t2` (POST) through nginx, and while
wrk runs (1) reads each container's CPU time from its cgroup (cgroup v1 cpuacct, or v2
cpu.stat) and docker-proxy's and wrk's from /proc, and (2) samples every gunicorn worker with
`py-spy record --nonblocking --gil --format raw` (only samples of the thread holding the GIL:
a gevent hub waiting in epoll and gevent's idle threadpool threads are not counted). Prints CPU
milliseconds per call for each component and py-spy's top frames by own time and by total time,
in percent of the samples; removes the function at the end.

Needs py-spy (`.venv/bin/pip install py-spy`), wrk, root (py-spy attaches to the workers by PID
from the host) and the stack from `make up`. Usage:

    .venv/bin/python -m bench.profile [--runtime of-watchdog] [--connections 16] [--seconds 20]
        [--url URL]  # profile another way in to the same function, e.g. gunicorn without nginx
        [--faas-swarm]  # only CPU per call, of faas-swarm run as a peer, for comparison
        [--nginx-tasks]  # only CPU per call, of nginx straight to the task (see bench.experiments)
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from bench import experiments, invoke
from bench.common import call, stack_auth, wait_until
from harness import ROOT, docker

NGINX = "openfaas_nginx_1"
GATEWAY = "openfaas_gateway_1"


def container_cpu_ns(container: str) -> int:
    cid = docker("inspect", "-f", "{{.Id}}", container)
    v1, v2 = f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"
    for path in (v1, v2):
        if os.path.exists(path):
            text = Path(path).read_text()
            if path.endswith("cpu.stat"):
                return int(re.search(r"usage_usec (\d+)", text).group(1)) * 1000
            return int(text)
    return 0


def process_cpu_ns(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def pids_of(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def worker_pids() -> list[int]:
    master = int(docker("inspect", "-f", "{{.State.Pid}}", GATEWAY))
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def summarize(raw_files: list[Path], top: int) -> str:
    """Own and total time per function (file:function) over all samples, in percent."""
    own: collections.Counter = collections.Counter()
    packages: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    samples = 0
    for path in raw_files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            samples += n
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            own[frames[-1]] += n
            packages[re.sub(r"^.*\(([^/.]+)[/.].*$", r"\1", frames[-1])] += n
            for frame in set(frames):
                total[frame] += n
    lines = [f"{samples} samples holding the GIL", "", "own time by package (of the innermost frame):"]
    lines += [f"  {100 * n / samples:5.1f}%  {package}" for package, n in packages.most_common(top)]
    lines += ["", "own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total time (the frame and what it calls):"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines)


def task_container(service: str) -> str:
    return docker("ps", "-q", "-f", f"label=com.docker.swarm.service.name={service}").split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--url", help="call the function here instead of GATEWAY/function/NAME ({name} is replaced)")
    parser.add_argument("--runtime", default="of-watchdog", choices=list(invoke.RUNTIMES))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20, help="wrk's duration; sampling covers all but 3 s of it")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw output here")
    parser.add_argument("--faas-swarm", action="store_true", help="instead: CPU per call of faas-swarm (no py-spy)")
    parser.add_argument(
        "--nginx-tasks", action="store_true",
        help="instead: CPU per call of an nginx routing straight to the task with keep-alive (bench.experiments)",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(py_spy) or not shutil.which("wrk"):
        raise SystemExit("needs py-spy (.venv/bin/pip install py-spy) and wrk (apt-get install wrk)")

    name = f"bench-prof-{uuid.uuid4().hex[:6]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    invoke.ensure_function_images()
    auth, peer = ({}, None) if args.faas_swarm else (stack_auth(), None)
    try:
        if args.faas_swarm:
            # The same function deployed through faas-swarm, run as a peer: its CPU per call.
            peer = invoke.Setup("", {}, [args.runtime], [invoke.PEER]).start()
            url = peer.urls[args.runtime][invoke.PEER]
            workers: list[int] = []
            function = task_container(peer.name(args.runtime, "fs"))
            containers = {"faas-swarm": task_container(f"bench-{peer.run_id}-peer-faas-swarm"), "function": function}
        else:
            body = {"service": name, "image": invoke.RUNTIMES[args.runtime]}
            status, text, _ = call(f"{args.gateway}/system/functions", "POST", body, auth)
            if status != 202:
                raise SystemExit(f"deploy failed: {status} {text!r}")
            url = (args.url or f"{args.gateway}/function/{{name}}").format(name=name)
            wait_until(lambda: invoke._answers(url), f"{url} to answer")
            workers = worker_pids()
            function = task_container(name)
            containers = {"gateway (gunicorn)": GATEWAY, "nginx": NGINX, "function": function}
            if args.nginx_tasks:
                conf = workdir / "nginx.conf"
                conf.write_text(experiments.tasks_conf([name]))
                conf.chmod(0o644)
                nginx_port = invoke._free_host_port(set())
                experiment = docker(
                    "run", "-d", "--name", f"{name}-nginx-tasks", "--network", invoke.FUNCTIONS_NETWORK,
                    "-p", f"127.0.0.1:{nginx_port}:8080", "-v", f"{conf}:/etc/nginx/nginx.conf:ro",
                    docker("inspect", "-f", "{{.Config.Image}}", NGINX),
                )
                url, workers = f"http://127.0.0.1:{nginx_port}/function/{name}", []
                containers = {"nginx->tasks keepalive": experiment, "function": function}
                wait_until(lambda: invoke._answers(url), f"{url} to answer")
        invoke.latencies(url, 50)
        port = urlsplit(url).port or 80
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {invoke.load()}; {url}; workers {workers}", flush=True)

        command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", "-s", str(invoke.POST_SCRIPT), url]
        load_gen = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(1)
            window = args.seconds - 3
            before = {label: container_cpu_ns(c) for label, c in containers.items()}
            proxies, wrks = pids_of(f"docker-proxy .*-host-port {port} "), [load_gen.pid]
            before[f"docker-proxy :{port}"], before["wrk"] = process_cpu_ns(proxies), process_cpu_ns(wrks)
            started = time.monotonic()
            raws = [workdir / f"worker-{pid}.raw" for pid in workers]
            spies = [
                subprocess.Popen(
                    [py_spy, "record", "--nonblocking", "--gil", "--pid", str(pid), "--duration", str(window),
                     "--format", "raw", "--output", str(raw)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
                for pid, raw in zip(workers, raws)
            ]
            for spy in spies:
                spy.wait(timeout=window + 30)
            if not spies:
                time.sleep(window)
            elapsed = time.monotonic() - started
            after = {label: container_cpu_ns(c) for label, c in containers.items()}
            after[f"docker-proxy :{port}"], after["wrk"] = process_cpu_ns(proxies), process_cpu_ns(wrks)
            output = load_gen.communicate(timeout=args.seconds + 30)[0]
        finally:
            if load_gen.poll() is None:
                load_gen.kill()
        result = invoke.parse_wrk(output)
        calls = result.rps * elapsed
        print(f"wrk c{args.connections}: {result.describe()}")
        print(f"\nCPU per call over {elapsed:.1f} s (~{calls:.0f} calls; 2 cores = {2000 * elapsed / calls:.2f} ms per call):")
        for label in before:
            used = (after[label] - before[label]) / 1e6
            print(f"  {label:22} {used / calls:7.3f} ms/call  ({100 * used / 1000 / elapsed:5.1f}% of one core)")
        if workers:
            print()
            print(summarize([raw for raw in raws if raw.exists()], args.top))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for raw in raws:
                if raw.exists():
                    shutil.copy(raw, args.keep / raw.name)
    finally:
        if peer:
            peer.close()
        else:
            if args.nginx_tasks:
                docker("rm", "-f", f"{name}-nginx-tasks", check=False)
            call(f"{args.gateway}/system/functions", "DELETE", {"functionName": name}, auth)
            print(f"removed {name}")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
