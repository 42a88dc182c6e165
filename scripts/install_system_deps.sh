#!/usr/bin/env bash
# System packages the integration tests need: Debian's slurmctld, slurmd, slurm-client and munge
# (tests/test_slurm.py) and chromium (tests/test_pipeline.py renders the HTML report headless). Idempotent: installs only what is missing, and only as root with
# apt-get available. Never fails the build: without apt or root it says so and exits 0, and the
# SLURM test then skips with the same reason.
set -u

PACKAGES=(slurmctld slurmd slurm-client munge chromium)
BINARIES=(slurmctld slurmd sbatch squeue munged chromium)

missing_binaries() {
    local b out=()
    for b in "${BINARIES[@]}"; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || out+=("$b")
    done
    echo "${out[*]:-}"
}

slurm_version() {
    # sbatch --version needs a slurm.conf; ask dpkg instead.
    dpkg-query -W -f='slurm ${Version}' slurmctld 2>/dev/null || echo "slurm (version unknown)"
}

missing=$(missing_binaries)
if [ -z "$missing" ]; then
    echo "install_system_deps: slurm, munge and chromium already installed ($(slurm_version)); nothing to do"
    exit 0
fi
echo "install_system_deps: missing binaries: $missing"

if [ "$(id -u)" -ne 0 ]; then
    echo "install_system_deps: not root; skipping apt-get (the SLURM and report-screenshot tests will skip)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps: apt-get not available; skipping (the SLURM and report-screenshot tests will skip)"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Debian's maintainer scripts try to start the daemons; the test starts its own on loopback.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi

status=0
echo "install_system_deps: apt-get update"
apt-get update -qq || status=$?
if [ "$status" -eq 0 ]; then
    echo "install_system_deps: apt-get install ${PACKAGES[*]}"
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>&1 || status=$?
fi
[ "$created_policy" -eq 1 ] && rm -f "$policy"

if [ "$status" -ne 0 ]; then
    echo "install_system_deps: apt-get failed (exit $status); continuing (the SLURM and report-screenshot tests will skip)"
    exit 0
fi
missing=$(missing_binaries)
if [ -n "$missing" ]; then
    echo "install_system_deps: still missing after install: $missing (the SLURM and report-screenshot tests will skip)"
else
    echo "install_system_deps: installed ${PACKAGES[*]} ($(slurm_version))"
fi
exit 0
