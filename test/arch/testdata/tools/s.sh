#!/bin/bash
set -e
f() { true; }
X=$(socat - | tr a b) # a comment
ip netns exec ns-1 ping -c 1 x && f
$AWS ec2 x --query 'length(Vpcs)' \
  --more
case "$1" in
up)
	[ "$1" = up ] && echo "nameserver x"
	for r in $X; do logger "$r"; done
	;;
esac
