#!/usr/bin/env bash
# Make sure the system programs the tests use are installed: Debian's chromium (the HTML report is
# opened in a real headless browser). Ray is started by the tests themselves, on 127.0.0.1.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
