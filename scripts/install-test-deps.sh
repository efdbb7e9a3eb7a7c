#!/usr/bin/env bash
# Installs the system packages the test suite runs against, once; called by `npm test` (pretest)
# and by .ci/run, so both set up the same way.
#   - Ceph RGW (radosgw ceph-mon ceph-osd): a real S3-compatible server for the object-store tests;
#     test/support/s3-ceph-rgw.ts starts and stops it. Not needed when S3_ENDPOINT points elsewhere.
#   - nginx (nginx-light): the local-CDN integration test (infra/local-cdn/).
#   - chromium: the browser tests (puppeteer-core drives /usr/bin/chromium), e.g. the inspector's.
#   - etcd (etcd-server): the cluster tests; test/support/etcd.ts starts members on loopback ports.
# Fast when everything is there: it only looks for the binaries (no apt-get update).
# Without root or apt-get it installs nothing, prints what it skipped and the command to run, and
# exits 0: those tests then skip (and fail under CI=1). With `--required` (CI) anything missing
# afterwards is an error.
set -euo pipefail

required=false
[ "${1:-}" = "--required" ] && required=true

# Debian puts some of these in /usr/sbin, which a non-root PATH may lack; the tests look there too.
have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] || [ -x "/sbin/$1" ]
}

packages=()
reasons=()
if [ -z "${S3_ENDPOINT:-}" ]; then
  for binary in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
    if ! have "$binary"; then
      packages+=(radosgw ceph-mon ceph-osd)
      reasons+=("Ceph RGW ($binary missing): the S3 object-store and tiered-S3 conformance tests")
      break
    fi
  done
fi
if ! have nginx; then
  packages+=(nginx-light)
  reasons+=("nginx (nginx missing): the local-CDN integration test")
fi

if [ ! -x /usr/bin/chromium ]; then
  packages+=(chromium)
  reasons+=("chromium (/usr/bin/chromium missing): the browser tests (inspector)")
fi

if ! have etcd; then
  packages+=(etcd-server)
  reasons+=("etcd (etcd missing): the cluster coordination tests")
fi

[ "${#packages[@]}" -eq 0 ] && exit 0

command_line="apt-get update && apt-get install -y ${packages[*]}"

warn() {
  local bar='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
  {
    echo
    echo "$bar"
    echo "!!! TEST SET-UP SKIPPED: $1"
    for reason in "${reasons[@]}"; do echo "!!!   - $reason"; done
    echo "!!! Those tests are SKIPPED (they FAIL when CI is set). To install, run as root:"
    echo "!!!   $command_line"
    echo "$bar"
    echo
  } >&2
}

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then warn "not root, so the packages were not installed"; else warn "no apt-get on this machine"; fi
  if $required; then exit 1; fi
  exit 0
fi

echo "install-test-deps: installing ${packages[*]} (for: ${reasons[*]})" >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get update && apt-get install -y "${packages[@]}"; then
  exit 0
fi
warn "apt-get failed"
if $required; then exit 1; fi
exit 0
