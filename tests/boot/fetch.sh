#!/usr/bin/env bash
# Fetch what the boot tests need (tests/boot, pytest marker `boot`): QEMU from the distribution
# and, unpacked into a cache directory, Debian's Linux 6.1 kernels and static busybox for x86-64
# and arm64. Idempotent: a second run with everything in place changes nothing and downloads
# nothing. Cache: $VMLAYOUT_BOOT_CACHE, default tests/boot/.cache (gitignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${VMLAYOUT_BOOT_CACHE:-$here/.cache}"
export DEBIAN_FRONTEND=noninteractive

updated=0
apt_update() {
  if [ "$updated" = 0 ]; then
    apt-get update -qq
    updated=1
  fi
}

# Host tools: QEMU (TCG) for both architectures; GNU as/ld/objcopy build the x86 firmware stub.
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v qemu-system-aarch64 >/dev/null 2>&1 || need+=(qemu-system-arm)
for tool in as ld objcopy; do
  command -v "$tool" >/dev/null 2>&1 || need+=(binutils)
done
if [ "${#need[@]}" -gt 0 ]; then
  apt_update
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Foreign architecture for the arm64 kernel and busybox.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  updated=0
fi

# newest_abi ARCH FLAVOUR: the highest ABI N of linux-image-6.1.0-N-FLAVOUR-unsigned.
newest_abi() {
  apt-cache search --names-only "^linux-image-6\.1\.0-[0-9]+-$2-unsigned\$" 2>/dev/null \
    | sed -n "s/^linux-image-6\.1\.0-\([0-9]*\)-$2-unsigned .*/\1/p" | sort -n | tail -1
}

# unpack ARCH PACKAGE FILE DEST: download PACKAGE (deb) and keep FILE from it as DEST.
unpack() {
  local work
  work="$(mktemp -d "$cache/.work.XXXXXX")"
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$2" >/dev/null)
  dpkg-deb -x "$work"/*.deb "$work/root"
  mkdir -p "$(dirname "$4")"
  # shellcheck disable=SC2086  # FILE may be a glob
  cp $work/root/$3 "$4.tmp"
  mv "$4.tmp" "$4"
  rm -rf "$work"
}

mkdir -p "$cache"
want() { [ -s "$cache/$1" ] || return 0; return 1; }

if want x86_64/bzImage || want aarch64/vmlinuz || want aarch64/busybox || want x86_64/busybox; then
  apt_update
  if [ -z "$(newest_abi amd64 arm64)" ]; then
    updated=0
    apt_update
  fi
  x86_abi="$(newest_abi amd64 cloud-amd64)"
  arm_abi="$(newest_abi arm64 arm64)"
  if [ -z "$x86_abi" ] || [ -z "$arm_abi" ]; then
    echo "error: fetch: no linux-image-6.1.0-*-unsigned package found (x86 '$x86_abi', arm64 '$arm_abi')" >&2
    exit 2
  fi
  want x86_64/bzImage && unpack amd64 "linux-image-6.1.0-$x86_abi-cloud-amd64-unsigned" \
    "boot/vmlinuz-*" "$cache/x86_64/bzImage"
  want aarch64/vmlinuz && unpack arm64 "linux-image-6.1.0-$arm_abi-arm64-unsigned:arm64" \
    "boot/vmlinuz-*" "$cache/aarch64/vmlinuz"
  want x86_64/busybox && unpack amd64 "busybox-static:amd64" "bin/busybox" "$cache/x86_64/busybox"
  want aarch64/busybox && unpack arm64 "busybox-static:arm64" "bin/busybox" "$cache/aarch64/busybox"
  printf 'x86_64 linux-image-6.1.0-%s-cloud-amd64-unsigned\naarch64 linux-image-6.1.0-%s-arm64-unsigned\n' \
    "$x86_abi" "$arm_abi" >"$cache/VERSIONS"
fi
echo "boot cache ready: $cache ($(tr '\n' ' ' <"$cache/VERSIONS" 2>/dev/null || echo "versions not recorded"))"
