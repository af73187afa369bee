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
want lintian lintian       # the package test
want man man-db            # the man page test
want zsh zsh               # the completion test
want systemd-tmpfiles systemd
want pkcheck polkitd        # the notify-hook rule test (a private polkitd)
want dbus-daemon dbus-daemon
want dbus-send dbus-bin
want vtysh frr               # the BGP tests' router (zebra and bgpd, run by the lab)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei) # CJK glyphs in browser screenshots

# Go: hbd builds with the version in go.mod's go line or newer (the
# minimum; its toolchain line names the version preferred). Refuse an older
# Go with what to install, and install Debian's golang-go only when it is
# new enough: Debian 12's (1.19) is not.
here=$(cd "$(dirname "$0")/.." && pwd)
go_min=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$here/go.mod")
older() { # older A B: version A is older than version B
	[ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]
}
fetch="install Go $go_min or newer from https://go.dev/dl/ (tar -C /usr/local -xzf go$go_min.linux-amd64.tar.gz, then put /usr/local/go/bin on PATH)"
# $HBD_GO names the go binary to judge (the tests set it); an empty or
# missing one means no Go.
gobin=${HBD_GO-$(command -v go || true)}
[ -n "${HBD_GO+set}" ] || [ -n "$gobin" ] || [ ! -x /usr/local/go/bin/go ] || gobin=/usr/local/go/bin/go
[ -z "$gobin" ] || [ -x "$gobin" ] || gobin=
if [ -n "$gobin" ]; then
	# In the module, so that a Go 1.21+ may switch to the toolchain go.mod asks for.
	have=$(cd "$here" && "$gobin" env GOVERSION 2>/dev/null || true)
	have=${have#go}
	if [ -z "$have" ] || older "$have" "$go_min"; then
		echo "setup: $gobin is Go ${have:-of an unknown version}; hbd needs Go $go_min or newer: $fetch" >&2
		exit 1
	fi
else
	cand=$(apt-cache policy golang-go 2>/dev/null | sed -n 's/^ *Candidate: \(.*:\)\{0,1\}\([0-9][0-9.]*\).*/\2/p')
	if [ -n "$cand" ] && ! older "$cand" "$go_min"; then
		need+=(golang-go)
	else
		echo "setup: no Go here, and Debian's golang-go (${cand:-none}) is older than Go $go_min, which hbd needs: $fetch" >&2
		exit 1
	fi
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
# lab starts its own copies inside namespaces. FRR's service is left as it
# is: the lab runs its own zebra and bgpd in a namespace, with their own
# config and socket directory, and never touches /etc/frr or its service.
for svc in keepalived redis-server; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	fi
done
echo "setup: ok"
