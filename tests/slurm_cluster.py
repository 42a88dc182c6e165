"""A real single-node SLURM cluster on loopback, started and stopped by the tests (docs/cluster.md).

Debian's munged, slurmctld and slurmd run as child processes of the test: nothing is started through
systemd and every daemon is stopped in ``stop()``, also when a test fails. The node pretends to be a
GPU node of the size that ``workflow/profiles/slurm`` asks for (``SlurmdParameters=config_overrides``
makes slurmd trust the configured CPUs, memory and GPUs instead of the hardware), and its GPUs are
``gres.conf`` entries pointing at /dev/null, so ``--gpus=N`` requests schedule on a CPU box.

The configuration goes to /etc/slurm/slurm.conf rather than SLURM_CONF: the executor plugin's job
step drops SLURM_* variables before its inner ``srun``, which then reads the default path. An existing
slurm.conf that this module did not write is never touched (the cluster refuses to start instead).

Use it as a pytest fixture (``slurm_cluster``) or as a context manager::

    with SlurmCluster(workdir) as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env)

Without accounting (no slurmdbd), clients must use ``squeue`` for job status and finished jobs must
stay visible to it long enough: ``MinJobAge`` is 600 s, far above the plugin's status-check interval.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from system_deps import missing_system_dependency

SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
MARKER = "# written by tests/slurm_cluster.py (regionreasoner-repro); removed when the test ends"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "srun")

# The fake node: room for two of the biggest requests in workflow/profiles/slurm (4 GPUs x 8 CPUs,
# 256 GB each), so two GRPO variants can run side by side as on a real 8-GPU node.
NODE_CPUS = 64
NODE_MEMORY_MB = 600_000
NODE_GPUS = 8
PARTITIONS = ("cpu", "gpu")  # the partition names workflow/profiles/slurm uses


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
    )


def why_unavailable() -> str | None:
    """A reason the cluster cannot be started here, or None when it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root to write /etc/slurm/slurm.conf and start slurmctld/slurmd/munged"
    missing = [name for name in DAEMONS + CLIENTS if _which(name) is None]
    if missing:
        return (
            f"SLURM/munge binaries missing ({', '.join(missing)}); "
            "install them with scripts/install_system_deps.sh (Debian: slurmctld slurmd slurm-client munge)"
        )
    if not MUNGE_KEY.exists():
        return f"{MUNGE_KEY} is missing (Debian's munge package creates it)"
    for conf in (SLURM_CONF, GRES_CONF):
        if conf.exists() and MARKER not in conf.read_text(errors="replace"):
            return f"{conf} exists and was not written by this test; refusing to overwrite a real cluster's config"
    running = subprocess.run(["pgrep", "-x", "slurmctld|slurmd"], capture_output=True, text=True)
    if running.stdout.strip():
        return f"slurmctld/slurmd already running (pids {running.stdout.split()}); not starting a second cluster"
    return None


def slurm_conf(state: Path) -> str:
    """slurm.conf of the loopback cluster: one fake GPU node, partitions cpu (default) and gpu."""
    node = (
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} "
        f"Gres=gpu:{NODE_GPUS} State=UNKNOWN"
    )
    partitions = [
        f"PartitionName={name} Nodes=localhost MaxTime=INFINITE State=UP OverSubscribe=NO"
        + (" Default=YES" if i == 0 else "")
        for i, name in enumerate(PARTITIONS)
    ]
    return "\n".join(
        [
            MARKER,
            "ClusterName=regionreasoner-test",
            "SlurmctldHost=localhost(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "GresTypes=gpu",
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            # Finished jobs stay in squeue's view for 10 minutes (no accounting: squeue is the status source).
            "MinJobAge=600",
            "SchedulerParameters=sched_interval=1",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            f"StateSaveLocation={state}/ctld",
            f"SlurmdSpoolDir={state}/slurmd",
            f"SlurmctldPidFile={state}/slurmctld.pid",
            f"SlurmdPidFile={state}/slurmd.pid",
            f"SlurmctldLogFile={state}/slurmctld.log",
            f"SlurmdLogFile={state}/slurmd.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "KillWait=5",
            "Waittime=0",
            node,
            *partitions,
            "",
        ]
    )


def gres_conf(state: Path) -> str:
    """Fake GPUs: empty files stand in for the device files, so GPU requests schedule without hardware."""
    devices = f"{state}/fake-gpu[0-{NODE_GPUS - 1}]"
    return "\n".join([MARKER, "AutoDetect=off", f"NodeName=localhost Name=gpu File={devices}", ""])


@dataclass
class SlurmCluster:
    """munged + slurmctld + slurmd on 127.0.0.1, configured in /etc/slurm and stopped by ``stop()``."""

    workdir: Path
    start_timeout_s: float = 30.0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _written: list[Path] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.workdir / "slurm-state"

    @property
    def env(self) -> dict[str, str]:
        """The environment for clients: the default config path, no stray SLURM_* variables."""
        return {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}

    def start(self) -> SlurmCluster:
        reason = why_unavailable()
        if reason:
            raise RuntimeError(f"cannot start the test SLURM cluster: {reason}")
        try:
            self._write_config()
            self._start_munge()
            self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i"])
            self._spawn("slurmd", [_which("slurmd"), "-D", "-N", "localhost"])
            self._wait_for_idle_node()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self) -> None:
        for sub in ("ctld", "slurmd"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        for i in range(NODE_GPUS):
            (self.state / f"fake-gpu{i}").touch()
        for path, text in ((SLURM_CONF, slurm_conf(self.state)), (GRES_CONF, gres_conf(self.state))):
            path.write_text(text)
            self._written.append(path)

    def _start_munge(self) -> None:
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN, "munge", "munge")
        MUNGE_RUN.chmod(0o755)
        # Reuse a munged that is already serving (started by someone else); never stop it then.
        probe = subprocess.run(["munge", "-n"], capture_output=True) if _which("munge") else None
        if probe is not None and probe.returncode == 0:
            return
        # A direct child running as the munge user (not through runuser), so stop() reaps it.
        self._spawn("munged", [_which("munged"), "--foreground"], user="munge", group="munge")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("munged did not come up within 10 s")

    def _spawn(self, name: str, argv: list[str], **kwargs: str) -> None:
        log = open(self.state / f"{name}.stdout", "wb")
        self.processes[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env, **kwargs
        )
        log.close()

    def _wait_for_idle_node(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.state}/{name}.log")
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env)
            last = (out.stdout + out.stderr).strip()
            if out.returncode == 0 and last.split() and all(s == "idle" for s in last.split()):
                return
            time.sleep(0.2)
        raise RuntimeError(f"node not idle after {self.start_timeout_s} s (sinfo: {last!r}); see {self.state}")

    def cancel_all_jobs(self) -> None:
        subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, env=self.env, timeout=30)

    def stop(self) -> None:
        """Cancel every job, stop every daemon this object started, remove the config it wrote."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            try:
                self.cancel_all_jobs()
                time.sleep(1)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        while self._written:
            self._written.pop().unlink(missing_ok=True)

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def lean_test_config(path: Path, results: str | Path) -> dict:
    """config/test.yaml cut to two GRPO variants of one seed each and the models they need.

    Every rule the tables need is still exercised (SFT, GRPO, evaluation, every table); fewer jobs
    keep the SLURM test within the CI budget, since each SLURM job costs seconds of queueing and
    status checks. Further seeds and kept checkpoints (the same rules again) are left to the local
    pipeline tests. Report rows that name a dropped model are dropped with it.
    """
    import yaml

    config = yaml.safe_load(Path(path).read_text())
    config["results"] = str(results)
    variants = config["grpo"]["variants"]
    config["grpo"]["variants"] = {"base_only": variants["base_only"], "full": {"rewards": variants["full"]["rewards"]}}
    models = config["evaluate"]["models"] = ["base", "sft", "grpo-base_only", "grpo-full"]
    report = config["report"]
    # "random" is the random-object baseline (rule evaluate_random), not a trained model: kept.
    report["table1_rows"] = {k: v for k, v in report["table1_rows"].items() if k in models or k == "random"}
    for section in ("ablation_rows", "single_round_rows", "alpha_beta_rows"):
        report[section] = {k: v for k, v in report[section].items() if v in models}
    return config


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A running loopback SLURM cluster for the tests of one module; skipped (failed under CI=true)
    with a reason when impossible."""
    reason = why_unavailable()
    if reason:
        missing_system_dependency(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    with cluster:
        yield cluster
