#!/bin/sh
# The DHCP client script of canopy's netns instance driver. busybox udhcpc
# runs it inside the instance's network namespace on every lease event with
# the lease in its environment ($interface $ip $subnet $mask $router $dns
# $domain $mtu $staticroutes); it configures the interface the way a cloud
# image's DHCP client would. $CANOPY_RESOLV is the namespace's resolv.conf
# (/etc/netns/<ns>/resolv.conf, which `ip netns exec` shows as
# /etc/resolv.conf); it is rewritten in place so that existing bind mounts
# of it see the change.
set -u
: "${interface:=eth0}"
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set dev "$interface" up
	;;
bound|renew)
	if [ -n "${mtu:-}" ]; then
		ip link set dev "$interface" mtu "$mtu"
	fi
	if [ "$1" = bound ]; then
		ip -4 addr flush dev "$interface"
	fi
	ip addr replace "$ip/${mask:-${subnet:-32}}" broadcast + dev "$interface"
	if [ -n "${staticroutes:-}" ]; then
		# option 121 replaces option 3 (RFC 3442): pairs of prefix and gateway
		set -- $staticroutes
		while [ $# -ge 2 ]; do
			dst=$1 gw=$2
			shift 2
			[ "$dst" = 0.0.0.0/0 ] && dst=default
			if [ "$gw" = 0.0.0.0 ]; then
				ip route replace "$dst" dev "$interface"
			else
				ip route replace "$dst" via "$gw" dev "$interface"
			fi
		done
	elif [ -n "${router:-}" ]; then
		for r in $router; do
			ip route replace default via "$r" dev "$interface"
			break
		done
	fi
	if [ -n "${CANOPY_RESOLV:-}" ]; then
		{
			[ -n "${domain:-}" ] && echo "search $domain"
			for s in ${dns:-}; do echo "nameserver $s"; done
		} >"$CANOPY_RESOLV"
	fi
	;;
esac
exit 0
