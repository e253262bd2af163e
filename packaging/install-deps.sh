#!/usr/bin/env bash
# Installs (apt) every package hq needs to build, test and run, if missing.
# Idempotent: packages already installed are left alone, and apt is not touched at
# all when nothing is missing. Needs root (or sudo) on Debian 12.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev libhwloc-dev libjansson-dev
  libcriterion-dev libtomlplusplus-dev
  python3 python3-pytest
  clang libclang-rt-14-dev clang-format
  util-linux procps faketime
  dpkg-dev autoconf automake libtool debootstrap
  zsh fish groff-base
  chromium
  openssh-client openssh-server
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
