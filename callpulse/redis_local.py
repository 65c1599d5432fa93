"""Start (or find) a local redis-server process: used by `callpulse demo` and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_reachable(url: str, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def start_redis(port: int, workdir: Path, *, persist: bool = False) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:``port`` with its files in ``workdir``; wait until it answers.

    ``persist`` turns on AOF (``appendfsync everysec``) so the demo survives a restart;
    tests run without persistence for speed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (run scripts/setup.sh, or apt-get install redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--daemonize", "no", "--loglevel", "warning"]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"] if persist else ["--appendonly", "no"]
    # its own session: a Ctrl-C in the terminal (SIGINT to the foreground process group) must reach
    # the command that started it, which stops it in order, not kill it under the flow
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode} on port {port}")
        if is_reachable(url, timeout=0.2):
            return proc
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"redis-server on port {port} did not answer within 10 s")


def stop_redis(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cluster_port() -> int:
    """A free port for a cluster node: its bus port (+10000) free too, so at most 55535 (redis-server's rule)."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """A local Redis Cluster of Debian's redis-server: ``masters`` masters with ``replicas`` replicas each,
    created with ``redis-cli --cluster create`` (docs/operations.md, *Redis Cluster*). For the tests, the
    benchmarks and `callpulse demo --cluster`; production clusters are made by their operators."""

    def __init__(self, workdir: Path, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 2000,
                 persist: bool = False):
        self.workdir = workdir
        self.ports = [cluster_port() for _ in range(masters * (1 + replicas))]
        self.masters, self.replicas = masters, replicas
        self.node_timeout_ms = node_timeout_ms
        self.persist = persist
        self.procs: dict[int, subprocess.Popen] = {}
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> LocalCluster:
        for port in self.ports:
            self.start_node(port)
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (it comes with Debian's redis-server, or redis-tools)")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        out = subprocess.run([cli, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas),
                              "--cluster-yes"], capture_output=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout.decode()[-500:]}")
        self.wait_ok()
        return self

    def start_node(self, port: int) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (run scripts/setup.sh, or apt-get install redis-server)")
        d = self.workdir / str(port)
        d.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", "",
                "--daemonize", "no", "--loglevel", "warning", "--cluster-enabled", "yes",
                "--cluster-config-file", str(d / "nodes.conf"), "--cluster-node-timeout", str(self.node_timeout_ms),
                # replicas sync at once (the default waits 5 s for more replicas): until its first sync a replica
                # cannot take over from a dead master
                "--repl-diskless-sync-delay", "0"]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist else ["--appendonly", "no"]
        self.procs[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while not is_reachable(url, timeout=0.2):
            if time.monotonic() > deadline or self.procs[port].poll() is not None:
                raise RuntimeError(f"cluster node on port {port} did not start")
            time.sleep(0.05)

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every live node says ``cluster_state:ok`` (all slots served) and every live replica is in sync."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for port, proc in self.procs.items():
                if proc.poll() is not None:
                    continue
                try:
                    node = redis.Redis(port=port, socket_timeout=1)
                    info = node.execute_command("CLUSTER", "INFO")
                    info = info.decode() if isinstance(info, bytes) else str(info)
                    repl = node.info("replication")
                    states.append("cluster_state:ok" in info
                                  and (repl.get("role") != "slave" or repl.get("master_link_status") == "up"))
                except (redis.RedisError, OSError):
                    states.append(False)
            if states and all(states):
                return
            time.sleep(0.1)
        raise RuntimeError("the local Redis Cluster did not reach cluster_state:ok")

    def master_ports(self) -> list[int]:
        nodes = redis.RedisCluster.from_url(self.url).get_nodes()
        return sorted(n.port for n in nodes if n.server_type == "primary")

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crashed machine)."""
        proc = self.procs.get(port)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_redis(proc)
