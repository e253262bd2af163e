#!/usr/bin/env bash
# Builds a self-contained `hq` (broker, worker and client in one executable) that
# needs nothing but the C library: its C/C++ dependencies are built from Debian's
# source packages with only the features hq uses and linked statically, together
# with libstdc++ and libgcc.
#
#   bash packaging/static.sh            # -> $HQ_STATIC_BUILD/hq (default build-static/)
#
# By default the C library is linked statically too (HQ_STATIC_LIBC=ON): hq then needs
# no GLIBC_ symbol version and runs on any x86_64 Linux (RHEL/Rocky 8 with glibc 2.28,
# older and newer); host names resolve through /etc/hosts and DNS, the NSS modules
# glibc has built in, and modules such as sss, ldap or nis are not loaded.
# --libc=dynamic keeps libc, libm and ld-linux dynamic (glibc >= the build machine's).
# --deps-only builds (or checks the cache of) the libraries and stops.
#
# Dependencies are built once per source version and recipe, and cached under
# $HQ_STATIC_CACHE (default /var/cache/hq-static, outside the repository):
#   src/                      the downloaded Debian source packages (.dsc + tarballs)
#   <pkg>-<version>-<hash>/   one install prefix per library; <hash> covers the
#                             recipe (this script's build_<pkg> function and flags)
#                             and the prefixes of the libraries it builds on, so
#                             changing a recipe or a version rebuilds it and what
#                             depends on it, nothing else.
# Sources come only from the Debian archive this machine already uses: the script
# enables deb-src for the same URIs and suites (/etc/apt/sources.list.d/hq-deb-src.*)
# and runs `apt-get source`. Needs root (or sudo) for apt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${HQ_STATIC_CACHE:-/var/cache/hq-static}
build=${HQ_STATIC_BUILD:-$root/build-static}
jobs=$(nproc)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
started=$(date +%s)
static_libc=ON
deps_only=0
for arg in "$@"; do
  case $arg in
    --libc=static) static_libc=ON ;;
    --libc=dynamic) static_libc=OFF ;;
    --deps-only) deps_only=1 ;;
    *) echo "static.sh: unknown argument '$arg' (accepted: --libc=static, --libc=dynamic, --deps-only)" >&2
       exit 2 ;;
  esac
done
log() { echo "static: $*" >&2; }

# What the build needs on a fresh machine (libsodium's Debian source has no generated
# configure script, so it needs autoreconf and libtool; toml++ is header-only and its
# headers come from Debian's libtomlplusplus-dev).
ensure_tools() {
  local missing=() p
  for p in dpkg-dev autoconf automake libtool pkg-config cmake build-essential \
    libtomlplusplus-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
  if [ ${#missing[@]} -ne 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
      "${missing[@]}"
  fi
}

# deb-src entries for the URIs and suites of the enabled deb entries, in both the
# deb822 (.sources) and the one-line (.list) formats.
apt_updated=0
enable_deb_src() {
  local f out changed=0
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    case $f in */hq-deb-src.sources) continue ;; esac
    grep -q '^Types:.*deb-src' "$f" && continue
    grep -q '^URIs:.*debian' "$f" || continue
    out=/etc/apt/sources.list.d/hq-deb-src.sources
    local want
    want=$(sed -n '/^Types: deb$/,$p' "$f" | sed -e 's/^Types: deb$/Types: deb-src/')
    [ -e "$out" ] && [ "$(cat "$out")" = "$want" ] && continue
    printf '%s\n' "$want" | $SUDO tee "$out" >/dev/null
    changed=1
  done
  if [ -e /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
    out=/etc/apt/sources.list.d/hq-deb-src.list
    local want
    want=$(grep '^deb ' /etc/apt/sources.list | sed -e 's/^deb /deb-src /')
    if ! [ -e "$out" ] || [ "$(cat "$out")" != "$want" ]; then
      printf '%s\n' "$want" | $SUDO tee "$out" >/dev/null
      changed=1
    fi
  fi
  if [ $changed = 1 ] || ! apt-cache showsrc --only-source zeromq3 2>/dev/null | grep -q '^Version:'; then
    $SUDO apt-get update -q
    apt_updated=1
  fi
}

src_version() { # source package -> its newest version in the enabled suites
  apt-cache showsrc --only-source "$1" | awk '/^Version:/ {print $2}' | sort -V | tail -1
}

# Unpacks source package $1 at version $2 into $3 (downloaded once into $cache/src).
unpack_source() {
  local pkg=$1 ver=$2 dest=$3 dsc
  dsc="$cache/src/${pkg}_${ver#*:}.dsc"
  if ! [ -e "$dsc" ]; then
    $SUDO mkdir -p "$cache/src"
    (cd "$cache/src" && $SUDO apt-get source -q --download-only "$pkg=$ver" >&2)
  fi
  rm -rf "$dest"
  dpkg-source -q -x "$dsc" "$dest" >/dev/null
}

COMMON_CFLAGS="-O2 -fPIC -ffunction-sections -fdata-sections"

cmake_lib() { # src prefix [cmake args...]
  local src=$1 prefix=$2
  shift 2
  cmake -S "$src" -B "$src/_build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_PREFIX_PATH="$DEP_PREFIXES" -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_C_FLAGS="$COMMON_CFLAGS" -DCMAKE_CXX_FLAGS="$COMMON_CFLAGS" \
    -DBUILD_SHARED_LIBS=OFF "$@" >/dev/null
  cmake --build "$src/_build" -j"$jobs" >/dev/null
  cmake --install "$src/_build" >/dev/null
}

build_libsodium() {
  (cd "$1" && autoreconf -fi >/dev/null 2>&1 &&
    CFLAGS="$COMMON_CFLAGS" ./configure -q --prefix="$2" --libdir="$2/lib" \
      --disable-shared --enable-static --with-pic --disable-dependency-tracking \
      --disable-pie && make -s -j"$jobs" >/dev/null 2>&1 && make -s install >/dev/null)
}

build_zeromq3() { # CURVE through libsodium; no GSSAPI, PGM, NORM, VMCI, WebSocket, drafts
  cmake_lib "$1" "$2" -DBUILD_SHARED=OFF -DBUILD_STATIC=ON -DBUILD_TESTS=OFF \
    -DWITH_PERF_TOOL=OFF -DWITH_DOCS=OFF -DENABLE_DRAFTS=OFF -DENABLE_WS=OFF \
    -DWITH_LIBSODIUM=ON -DWITH_LIBSODIUM_STATIC=ON -DENABLE_CURVE=ON \
    -DWITH_OPENPGM=OFF -DWITH_NORM=OFF -DWITH_VMCI=OFF -DWITH_LIBBSD=OFF \
    -DENABLE_CPACK=OFF -DENABLE_PRECOMPILED=OFF
}

build_czmq() { # no systemd, uuid, curl, lz4, nss, microhttpd, drafts
  cmake_lib "$1" "$2" -DCZMQ_BUILD_SHARED=OFF -DCZMQ_BUILD_STATIC=ON -DENABLE_DRAFTS=OFF \
    -DCZMQ_WITH_UUID=OFF -DCZMQ_WITH_SYSTEMD=OFF -DCZMQ_WITH_LIBCURL=OFF \
    -DCZMQ_WITH_LZ4=OFF -DCZMQ_WITH_NSS=OFF -DCZMQ_WITH_LIBMICROHTTPD=OFF \
    -DBUILD_TESTING=OFF
}

build_hwloc() { # no udev, libxml2, PCI or other I/O discovery, no plugins
  (cd "$1" && CFLAGS="$COMMON_CFLAGS" ./configure -q --prefix="$2" --libdir="$2/lib" \
    --disable-shared --enable-static --with-pic --disable-dependency-tracking \
    --disable-libudev --disable-libxml2 --disable-pci --disable-io --disable-plugins \
    --disable-opencl --disable-cuda --disable-nvml --disable-rsmi --disable-levelzero \
    --disable-gl --disable-cairo --disable-doxygen --disable-readme &&
    make -s -j"$jobs" -C hwloc >/dev/null 2>&1 && make -s -C hwloc install >/dev/null &&
    make -s -C include install >/dev/null && install -D -m644 hwloc.pc "$2/lib/pkgconfig/hwloc.pc")
}

build_msgpack_c() {
  cmake_lib "$1" "$2" -DMSGPACK_ENABLE_SHARED=OFF -DMSGPACK_ENABLE_STATIC=ON \
    -DMSGPACK_BUILD_EXAMPLES=OFF -DMSGPACK_BUILD_TESTS=OFF
}

build_jansson() {
  cmake_lib "$1" "$2" -DJANSSON_BUILD_SHARED_LIBS=OFF -DJANSSON_BUILD_DOCS=OFF \
    -DJANSSON_WITHOUT_TESTS=ON -DJANSSON_EXAMPLES=OFF
}

# Builds source package $1 (recipe build_${1//-/_}) unless its prefix is cached; the
# libraries built before it are visible to it. Appends its prefix to DEP_PREFIXES.
DEP_PREFIXES=""
build_dep() {
  local pkg=$1 ver fn hash prefix t0
  fn=build_${pkg//-/_}
  ver=$(src_version "$pkg")
  [ -n "$ver" ] || { log "no source package '$pkg' in the enabled deb-src suites"; exit 1; }
  hash=$( (declare -f "$fn" cmake_lib; echo "$COMMON_CFLAGS $DEP_PREFIXES") | sha256sum | cut -c1-12)
  prefix="$cache/$pkg-${ver#*:}-$hash"
  if ! [ -e "$prefix/.complete" ]; then
    t0=$(date +%s)
    log "building $pkg $ver from source into $prefix"
    local work
    work=$(mktemp -d /tmp/hq-static-src.XXXXXX)
    unpack_source "$pkg" "$ver" "$work/src"
    $SUDO rm -rf "$prefix"
    $SUDO mkdir -p "$prefix"
    $SUDO chown "$(id -u)" "$prefix"
    PKG_CONFIG_PATH=$(pc_path) "$fn" "$work/src" "$prefix"
    touch "$prefix/.complete"
    rm -rf "$work"
    log "$pkg built in $(($(date +%s) - t0)) s"
  else
    log "$pkg $ver: cached ($prefix)"
  fi
  DEP_PREFIXES="${DEP_PREFIXES:+$DEP_PREFIXES;}$prefix"
}

pc_path() { # the pkg-config dirs of the prefixes built so far
  local p out=""
  IFS=';' read -ra ps <<<"$DEP_PREFIXES"
  for p in "${ps[@]}"; do out="${out:+$out:}$p/lib/pkgconfig:$p/share/pkgconfig"; done
  echo "$out"
}

ensure_tools
enable_deb_src
$SUDO mkdir -p "$cache"
for pkg in libsodium zeromq3 czmq hwloc msgpack-c jansson; do
  build_dep "$pkg"
done
deps_done=$(date +%s)
log "dependencies ready in $((deps_done - started)) s"

if [ $deps_only = 1 ]; then exit 0; fi

# toml++ is header-only: its headers are compiled into hq. They come from Debian's
# libtomlplusplus-dev (packaging/install-deps.sh), found through pkg-config.
cmake -S "$root" -B "$build" -DHQ_STATIC=ON -DHQ_STATIC_LIBC="$static_libc" \
  -DHQ_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$DEP_PREFIXES" >/dev/null
cmake --build "$build" -j"$jobs" --target hq
strip "$build/hq"
ln -sf hq "$build/hq-broker"
ln -sf hq "$build/hq-worker"
log "hq built in $(($(date +%s) - deps_done)) s (total $(($(date +%s) - started)) s)"
log "$build/hq: $(stat -c %s "$build/hq") bytes stripped"
ldd "$build/hq" >&2 || true
glibc=$(objdump -T "$build/hq" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1 || true)
log "highest GLIBC_ symbol version needed: ${glibc:-none (fully static)}"
