#!/usr/bin/env bash
# Make sure dcmtk's network tools (echoscu, storescu, findscu, movescu, getscu, storescp) are on the
# PATH: the DICOM tests use them as the real peers of the archive. Install them if not.
set -euo pipefail

if command -v storescu >/dev/null && command -v storescp >/dev/null && command -v getscu >/dev/null; then
  exit 0
fi
echo "dcmtk not installed: installing it from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq dcmtk >/dev/null
