# bash completion for hbd(8). Generated from hbd's help by
# go test ./cmd/hbd -run TestGeneratedFiles -update; do not edit.

_hbd() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W 'check handover import-keepalived keygen maintenance release run status version webapp --help --version' -- "$cur"))
		return
	fi
	case ${COMP_WORDS[1]} in
	check)
		case $prev in
		-c|--c) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		esac
		COMPREPLY=($(compgen -W '-c -q --help' -- "$cur"))
		;;
	handover)
		case $prev in
		-c|--c|-s|--s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		-group|--group|-timeout|--timeout|-to|--to) COMPREPLY=(); return ;;
		esac
		COMPREPLY=($(compgen -W '-c --group -s --timeout --to --help' -- "$cur"))
		;;
	import-keepalived)
		case $prev in
		-key-file|--key-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		-config-id|--config-id|-listen|--listen|-node|--node) COMPREPLY=(); return ;;
		esac
		COMPREPLY=($(compgen -W '--config-id --key-file --listen --node --help' -- "$cur"))
		[[ $cur == -* ]] || COMPREPLY+=($(compgen -f -- "$cur"))
		;;
	keygen)
		case $prev in
		-write|--write) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		-owner|--owner) COMPREPLY=(); return ;;
		esac
		COMPREPLY=($(compgen -W '--force --owner --write --help' -- "$cur"))
		;;
	maintenance)
		case $prev in
		-c|--c|-s|--s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		-timeout|--timeout) COMPREPLY=(); return ;;
		esac
		COMPREPLY=($(compgen -W '-c --force -s --timeout --help on off' -- "$cur"))
		;;
	release)
		case $prev in
		-c|--c) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		esac
		COMPREPLY=($(compgen -W '-c --help' -- "$cur"))
		;;
	run)
		case $prev in
		-c|--c) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		esac
		COMPREPLY=($(compgen -W '-c --help' -- "$cur"))
		;;
	status)
		case $prev in
		-c|--c|-s|--s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		esac
		COMPREPLY=($(compgen -W '-c --json -s --help' -- "$cur"))
		;;
	version)
		case $prev in
		esac
		COMPREPLY=($(compgen -W '--help' -- "$cur"))
		;;
	webapp)
		case $prev in
		-admin-token-file|--admin-token-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		-admin|--admin|-admin-group|--admin-group|-cluster-addrs|--cluster-addrs|-drain-timeout|--drain-timeout|-listen|--listen|-log-level|--log-level|-node|--node|-redis|--redis|-redis-password|--redis-password|-redis-user|--redis-user|-sentinel-addrs|--sentinel-addrs|-sentinel-master|--sentinel-master|-session-ttl|--session-ttl|-version|--version) COMPREPLY=(); return ;;
		esac
		COMPREPLY=($(compgen -W '--admin --admin-group --admin-token-file --cluster-addrs --cookie-secure --drain-timeout --listen --log-level --node --redis --redis-password --redis-tls --redis-user --sentinel-addrs --sentinel-master --session-ttl --version --help' -- "$cur"))
		;;
	esac
}
complete -o filenames -F _hbd hbd
