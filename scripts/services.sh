#!/usr/bin/env bash
# Make sure the system programs the tests use are installed (Debian packages): chromium (the HTML report
# is opened in a real headless browser), redis-server (the live tests start their own on a free port of
# 127.0.0.1) and MariaDB (the GDS tests use 127.0.0.1:3306 when root may log in there, else start their
# own mariadbd on a free port). Ray is started by the tests themselves, on 127.0.0.1.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# a real Prometheus scrapes a live model's metrics (tests/serve/test_live.py); the tests start their own
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# `ray up` / `ray down` with cluster/onprem.yaml (tests/cluster/test_ray_up.py): ssh and rsync
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } &&
  { command -v mariadb-install-db >/dev/null 2>&1 || [ -x /usr/bin/mariadb-install-db ]; } || need+=(mariadb-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts the services it installs; the tests start their own on free ports
  $SUDO systemctl stop redis-server >/dev/null 2>&1 || true
  # Debian's prometheus would listen on every interface (:9090): stopped and kept off
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
