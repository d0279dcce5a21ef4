#!/usr/bin/env bash
# The browser the web-page test drives: Debian's chromium and chromium-driver, installed once with apt-get
# (root, or sudo). Nothing downloads a browser build of its own.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian's chromium and chromium-driver for the web-page test ..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
