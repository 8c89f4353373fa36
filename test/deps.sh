#!/usr/bin/env bash
# Install the Debian 12 packages health_pass needs to build, test and
# benchmark, when any is missing (libipc-run-perl for the TAP scripts'
# PostgreSQL::Test modules, binutils for nm, libp11-kit-dev for the PKCS#11
# header, softhsm2 as the tests' HSM, python3-cbor2 for the independent
# verifier of issued passes).  Runs apt-get as root (or through sudo).
set -euo pipefail
PKGS="make gcc postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap postgresql-contrib
      libssl-dev zlib1g-dev openssl clang-14 libclang-rt-14-dev python3 python3-cryptography
      python3-psycopg2 libipc-run-perl binutils libp11-kit-dev softhsm2 python3-cbor2"
missing=()
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
