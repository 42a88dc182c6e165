#!/usr/bin/env bash
# System packages the integration tests need, from Debian:
#   slurmctld, slurmd, slurm-client, munge   tests/test_slurm.py (a loopback SLURM cluster)
#   chromium                                 tests/test_pipeline.py (screenshot of the HTML report)
#   latexmk, texlive-latex-base,             tests/test_paper.py (results/paper/main.pdf: booktabs and
#   texlive-latex-recommended, lmodern,      caption come from -recommended, vector fonts from
#   poppler-utils                            lmodern; pdftotext, pdftoppm)
# Idempotent: installs only what is missing, as root with apt-get (after `apt-get update`).
# Outside CI a dependency that cannot be installed is reported and the tests needing it skip.
# Under CI=true it fails the run, naming what is missing: CI must not go green on skipped tests.
set -u

PACKAGES=(slurmctld slurmd slurm-client munge chromium latexmk texlive-latex-base texlive-latex-recommended lmodern
          poppler-utils)
# binary=package, the binaries the tests call
BINARIES=(slurmctld=slurmctld slurmd=slurmd sbatch=slurm-client squeue=slurm-client munged=munge
          chromium=chromium latexmk=latexmk pdflatex=texlive-latex-base pdftotext=poppler-utils
          pdftoppm=poppler-utils)

missing_binaries() {
    local pair out=""
    for pair in "${BINARIES[@]}"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || out+="${out:+, }${pair%%=*} (package ${pair#*=})"
    done
    # a font package, no binary: ask TeX's own file search
    kpsewhich lmodern.sty >/dev/null 2>&1 || out+="${out:+, }lmodern.sty (package lmodern)"
    echo "$out"
}

# Exit 0, or 1 under CI=true, after saying what is missing and why.
give_up() {
    if [ "${CI:-}" = "true" ]; then
        echo "install_system_deps: error: CI=true and missing: $1 ($2)" >&2
        exit 1
    fi
    echo "install_system_deps: missing: $1 ($2); the tests needing them will skip"
    exit 0
}

missing=$(missing_binaries)
if [ -z "$missing" ]; then
    echo "install_system_deps: slurm, munge, chromium, LaTeX and poppler already installed; nothing to do"
    exit 0
fi
echo "install_system_deps: missing binaries: $missing"

[ "$(id -u)" -eq 0 ] || give_up "$missing" "not root, cannot apt-get install"
command -v apt-get >/dev/null 2>&1 || give_up "$missing" "apt-get not available"

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

missing=$(missing_binaries)
[ -z "$missing" ] || give_up "$missing" "apt-get exit status $status"
echo "install_system_deps: installed ${PACKAGES[*]}"
