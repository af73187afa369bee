#!/usr/bin/env bash
# Installs what hbd's demo, tests and benchmark need, from Debian's packages,
# when missing. Run as root. Idempotent: installs nothing that is there.
set -euo pipefail

need=()
want() { # want COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || need+=("$2")
}
want ip iproute2
want bridge iproute2
want nft nftables
want redis-server redis-server
want chromium chromium
want systemd-analyze systemd
want keepalived keepalived
want dpkg-deb dpkg
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei) # CJK glyphs in browser screenshots

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	need+=(golang-go)
fi

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages: ${need[*]}; run as root (sudo make setup)" >&2
		exit 1
	fi
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	echo "setup: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# keepalived's and redis's packaged services must not run on their own: the
# lab starts its own copies inside namespaces.
for svc in keepalived redis-server; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	fi
done
echo "setup: ok"
