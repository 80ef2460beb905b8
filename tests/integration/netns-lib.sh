# tests/integration/netns-lib.sh - "hosts" for multi-host tests, sourced:
# a bridge in the root namespace at NET.1/24 and N network namespaces on
# it, namespace PREFIX-i at NET.1i with a default route via the bridge.
# Needs root and `ip netns`. Names stay under the 15-byte interface limit
# when PREFIX is at most 12 bytes.
#   netns_up PREFIX N NET BRIDGE   -> 0; 1 (nothing left behind) when the
#                                     bridge cannot be made
#   netns_down PREFIX N BRIDGE     kills what runs inside, removes it all

netns_up() {
	local prefix=$1 n=$2 net=$3 br=$4 i ns
	ip link add "$br" type bridge 2>/dev/null || return 1
	ip addr add "$net.1/24" dev "$br"
	ip link set "$br" up
	for i in $(seq "$n"); do
		ns="$prefix-$i"
		ip netns add "$ns"
		ip link add "v$prefix-$i" type veth peer name eth0 netns "$ns"
		ip link set "v$prefix-$i" master "$br" up
		ip -n "$ns" addr add "$net.1$i/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" link set lo up
		ip -n "$ns" route add default via "$net.1"
	done
}

netns_down() {
	local prefix=$1 n=$2 br=$3 i p
	for i in $(seq "$n"); do
		for p in $(ip netns pids "$prefix-$i" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$prefix-$i" 2>/dev/null
		# the host end can outlive an asynchronous namespace teardown
		ip link del "v$prefix-$i" 2>/dev/null
	done
	ip link del "$br" 2>/dev/null
}
