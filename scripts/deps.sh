#!/usr/bin/env bash
#  deps.sh - installs the Debian 12 packages cartmq needs, if missing.
#  Runs apt-get only when something is missing, so it is cheap to repeat.
set -euo pipefail

#  The Python package (python/) installs offline with Debian's pip,
#  setuptools and venv.
python_packages=(python3-pip python3-setuptools python3-wheel python3-venv)

packages=(build-essential cmake pkg-config clang clang-format valgrind
    libzmq3-dev libczmq-dev libmsgpack-dev libhiredis-dev libcmocka-dev
    redis-server python3 python3-zmq python3-msgpack python3-redis
    python3-pytest python3-pytest-xdist tshark libjson-c-dev libmicrohttpd-dev
    python3-prometheus-client)

#  Redis Sentinel and Cluster for their harness tests (issue 16).
packages+=(redis-sentinel redis-tools)

missing=()
for package in "${packages[@]}" "${python_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null \
        | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
