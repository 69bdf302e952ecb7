#!/bin/bash
# scripts/demo.sh: builds pmvm and boots a Linux guest with two virtual NVDIMMs (the seed's
# example), creates namespaces with ndctl in the guest and mounts a DAX file system.
# On a host whose KVM cannot boot guests (like these machines' kvm_pvm) it runs inside the
# project's nested harness (QEMU TCG L1 host with kvm_amd); on a real KVM host, directly.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/deps.sh" || exit 1
. "$repo/tests/e2e/stage.sh"
"$repo/harness/hib" setup >&2 || exit 1
extra=$(mktemp -d)
trap 'rm -rf "$extra"' EXIT
stage_extra_dir "$extra"
[[ -x $extra/bin/pmvm ]] || { echo "demo: pmvm did not build" >&2; exit 1; }
cp "$repo/scripts/demo/l2-demo.sh" "$extra/e2e/"
HIB_EXTRA_DIR="$extra" "$repo/harness/hib" run "$repo/scripts/demo/l1-demo.sh"
