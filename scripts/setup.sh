#!/usr/bin/env bash
# Installs every system package alignpro needs to build, test and run on Debian 12, and the
# Python packages of analysis/. Safe to run again: it installs only what is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake pkg-config git clang-format
  libtorch-dev libopenblas0-pthread libopenblas-pthread-dev
  openmpi-bin libopenmpi-dev
  libhdf5-dev hdf5-tools
  libboost-serialization-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev libpcre2-dev
  slurm-wlm munge
  python3 python3-pip
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: not root and no sudo; run as root" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  echo "setup: all Debian packages present"
fi

# OpenBLAS with pthreads as the BLAS that libtorch uses: tens of times faster than the reference.
blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')
case "$blas" in
  *openblas-pthread*) ;;
  *)
    alt=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas-pthread | head -n 1)
    if [ -n "$alt" ]; then
      echo "setup: selecting OpenBLAS (pthread) as the system BLAS"
      "${sudo_cmd[@]}" update-alternatives --set libblas.so.3-x86_64-linux-gnu "$alt" >/dev/null
      lapack=$(update-alternatives --list liblapack.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas-pthread | head -n 1)
      [ -n "$lapack" ] && "${sudo_cmd[@]}" update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$lapack" >/dev/null
    fi
    ;;
esac

# Python packages for analysis/ (pinned in its requirements file).
req="$here/analysis/requirements.txt"
if [ -f "$req" ]; then
  if ! python3 -c "import h5py, pandas, matplotlib, pytest" >/dev/null 2>&1; then
    echo "setup: installing Python packages from analysis/requirements.txt"
    python3 -m pip install -q --disable-pip-version-check -r "$req" ||
      python3 -m pip install -q --disable-pip-version-check --break-system-packages -r "$req"
  fi
fi
echo "setup: done"
