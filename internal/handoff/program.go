package handoff

// The program's configuration, one entry of an array map (u32 fields in
// the host's order).
const (
	cfgActive  = 0 // u32: how many VIPs are forwarded; 0 passes every packet
	cfgIfindex = 4 // u32: where forwarded frames leave (the VIP interface)
	cfgSize    = 8
)

// The forwarded VIPs, a hash map: the key is the address family (u32, 4 or
// 6) and the address (16 bytes, network order; an IPv4 address fills the
// first 4 and the rest is zero), the value the Ethernet header's two
// addresses to write (the previous master's, then this host's).
const (
	vipKeySize   = 20
	vipValueSize = 12
	maxVIPs      = 256
)

// Offsets in struct __sk_buff and struct bpf_sock (include/uapi/linux/bpf.h).
const (
	skbData    = 76
	skbDataEnd = 80
	sockState  = 72
)

// Kernel constants the program compares with.
const (
	tcpTimeWait  = 6  // TCP_TIME_WAIT
	tcpListen    = 10 // TCP_LISTEN
	tcActOK      = 0  // TC_ACT_OK: let the packet go on up the stack
	currentNetns = -1 // BPF_F_CURRENT_NETNS
	ethIPv4      = 0x0008
	ethIPv6      = 0xdd86 // ETH_P_IPV6 as a little-endian load of the wire's bytes
	tcpSYN       = 0x02
	tcpACK       = 0x10
)

// program is the tc classifier (direct action) that does the daisy
// chaining. For each frame that arrives on the VIP interface:
//
//  1. if nothing is forwarded, or the frame is not TCP, pass it;
//  2. a SYN without ACK opens a new connection: this host serves it, pass;
//  3. a destination that is no forwarded VIP: pass;
//  4. look the 4-tuple up among this host's sockets (bpf_skc_lookup_tcp,
//     which also finds request and time-wait sockets); a socket other than
//     a listener or a time-wait one means the connection is ours: pass (a
//     time-wait socket is left from an earlier connection on a client port
//     that the client has since used again, with the previous master);
//  5. otherwise the connection was opened with the VIP's previous master
//     (its SYN went there before the clients followed our announcement):
//     rewrite the Ethernet addresses (to: the previous master; from: us)
//     and send the frame back out of the interface, where the previous
//     master accepts it through its hand-off route.
//
// The stack holds the configuration map's key at -4, the socket tuple
// below it (IPv4: -16, IPv6: -40) and the VIP map's key at -64.
// The IPv4 header must have no options (a packet with options is passed).
func program(cfgMapFD, vipMapFD int) []insn {
	const key = -64
	// lookupVIP leaves in R9 the VIP map's entry for the key on the stack,
	// or passes the frame when the destination is forwarded nowhere.
	lookupVIP := []insn{
		ldMapFD(r1, vipMapFD),
		movReg(r2, rFP),
		addImm(r2, key),
		call(fnMapLookupElem),
		jmpImm(jmpJEQ, r0, 0, "pass"),
		movReg(r9, r0), // R9: the Ethernet addresses to write
	}
	var p []insn
	p = append(p,
		movReg(r6, r1), // R6: the skb
		stImm(rFP, -4, 0, word),
		ldMapFD(r1, cfgMapFD),
		movReg(r2, rFP),
		addImm(r2, -4),
		call(fnMapLookupElem),
		jmpImm(jmpJEQ, r0, 0, "pass"),
		movReg(r7, r0), // R7: the configuration
		ldx(r1, r7, cfgActive, word),
		jmpImm(jmpJEQ, r1, 0, "pass"),
		ldx(r2, r6, skbData, word),
		ldx(r3, r6, skbDataEnd, word),
		movReg(r4, r2),
		addImm(r4, 14),
		jmpReg(jmpJGT, r4, r3, "pass"),
		ldx(r1, r2, 12, half),
		jmpImm(jmpJEQ, r1, ethIPv4, "ipv4"),
		jmpImm(jmpJEQ, r1, ethIPv6, "ipv6"),
		ja("pass"),

		// IPv4: Ethernet 14 + IP 20 + TCP 20.
		movReg(r4, r2).at("ipv4"),
		addImm(r4, 54),
		jmpReg(jmpJGT, r4, r3, "pass"),
		ldx(r1, r2, 14, byte_),
		jmpImm(jmpJNE, r1, 0x45, "pass"),
		ldx(r1, r2, 23, byte_),
		jmpImm(jmpJNE, r1, 6, "pass"),
		ldx(r1, r2, 47, byte_),
		andImm(r1, tcpSYN|tcpACK),
		jmpImm(jmpJEQ, r1, tcpSYN, "pass"),
		// The VIP map's key: family 4, the destination, zeros.
		stImm(rFP, key, 4, word),
		ldx(r1, r2, 30, word),
		stx(rFP, key+4, r1, word),
		stImm(rFP, key+8, 0, word),
		stImm(rFP, key+12, 0, word),
		stImm(rFP, key+16, 0, word),
		// struct bpf_sock_tuple.ipv4: saddr, daddr, sport, dport (12 bytes).
		ldx(r1, r2, 26, word),
		stx(rFP, -16, r1, word),
		ldx(r1, r2, 30, word),
		stx(rFP, -12, r1, word),
		ldx(r1, r2, 34, word),
		stx(rFP, -8, r1, word),
	)
	p = append(p, lookupVIP...)
	p = append(p,
		movReg(r1, r6),
		movReg(r2, rFP),
		addImm(r2, -16),
		movImm(r3, 12),
		movImm(r4, currentNetns),
		movImm(r5, 0),
		call(fnSkcLookupTcp),
		ja("judge"),

		// IPv6: Ethernet 14 + IPv6 40 + TCP 20, no extension headers.
		movReg(r4, r2).at("ipv6"),
		addImm(r4, 74),
		jmpReg(jmpJGT, r4, r3, "pass"),
		ldx(r1, r2, 20, byte_),
		jmpImm(jmpJNE, r1, 6, "pass"),
		ldx(r1, r2, 67, byte_),
		andImm(r1, tcpSYN|tcpACK),
		jmpImm(jmpJEQ, r1, tcpSYN, "pass"),
		// The VIP map's key: family 6, the destination.
		stImm(rFP, key, 6, word),
		ldx(r1, r2, 38, word),
		stx(rFP, key+4, r1, word),
		ldx(r1, r2, 42, word),
		stx(rFP, key+8, r1, word),
		ldx(r1, r2, 46, word),
		stx(rFP, key+12, r1, word),
		ldx(r1, r2, 50, word),
		stx(rFP, key+16, r1, word),
		// struct bpf_sock_tuple.ipv6: saddr, daddr, sport, dport (36 bytes),
		// copied from offset 22 (source address) on.
		ldx(r1, r2, 22, word),
		stx(rFP, -40, r1, word),
		ldx(r1, r2, 26, word),
		stx(rFP, -36, r1, word),
		ldx(r1, r2, 30, word),
		stx(rFP, -32, r1, word),
		ldx(r1, r2, 34, word),
		stx(rFP, -28, r1, word),
		ldx(r1, r2, 38, word),
		stx(rFP, -24, r1, word),
		ldx(r1, r2, 42, word),
		stx(rFP, -20, r1, word),
		ldx(r1, r2, 46, word),
		stx(rFP, -16, r1, word),
		ldx(r1, r2, 50, word),
		stx(rFP, -12, r1, word),
		ldx(r1, r2, 54, word),
		stx(rFP, -8, r1, word),
	)
	p = append(p, lookupVIP...)
	p = append(p,
		movReg(r1, r6),
		movReg(r2, rFP),
		addImm(r2, -40),
		movImm(r3, 36),
		movImm(r4, currentNetns),
		movImm(r5, 0),
		call(fnSkcLookupTcp),

		// R0: a socket of ours for the 4-tuple, or NULL.
		jmpImm(jmpJEQ, r0, 0, "forward").at("judge"),
		ldx(r8, r0, sockState, word),
		movReg(r1, r0),
		call(fnSkRelease),
		jmpImm(jmpJEQ, r8, tcpTimeWait, "forward"),
		jmpImm(jmpJNE, r8, tcpListen, "pass"),

		// Not ours: to the VIP's previous master.
		movReg(r1, r6).at("forward"),
		movImm(r2, 0),
		movReg(r3, r9),
		movImm(r4, vipValueSize),
		movImm(r5, 0),
		call(fnSkbStoreBytes),
		jmpImm(jmpJNE, r0, 0, "pass"),
		ldx(r1, r7, cfgIfindex, word),
		movImm(r2, 0), // egress
		call(fnRedirect),
		exit(),

		movImm(r0, tcActOK).at("pass"),
		exit(),
	)
	return p
}
