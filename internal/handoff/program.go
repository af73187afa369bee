package handoff

import (
	"github.com/cilium/ebpf/asm"
)

// The program's configuration, one entry of an array map (all fields in
// the order and at the offsets below; addresses and MACs in network order).
const (
	cfgActive  = 0  // u32: 0 passes every packet
	cfgIfindex = 4  // u32: where forwarded frames leave (the VIP interface)
	cfgDstMAC  = 8  // [6]byte: the previous master
	cfgSrcMAC  = 14 // [6]byte: this host
	cfgVIP4    = 20 // [4]byte: the IPv4 VIP, or zero
	cfgVIP6    = 24 // [16]byte: the IPv6 VIP, or zero
	cfgSize    = 40
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
//  1. if forwarding is off, or the frame is not TCP to the VIP, pass it;
//  2. a SYN without ACK opens a new connection: this host serves it, pass;
//  3. look the 4-tuple up among this host's sockets (bpf_skc_lookup_tcp,
//     which also finds request and time-wait sockets); a socket other than
//     a listener or a time-wait one means the connection is ours: pass (a
//     time-wait socket is left from an earlier connection on a client port
//     that the client has since used again, with the previous master);
//  4. otherwise the connection was opened with the previous master (its SYN
//     went there before the clients followed our announcement): rewrite
//     the Ethernet addresses (to: the previous master; from: us) and send
//     the frame back out of the interface, where the previous master
//     accepts it through its hand-off route.
//
// The IPv4 header must have no options (a packet with options is passed).
func program(cfgMapFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // R6: the skb
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, cfgMapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(asm.R7, asm.R0), // R7: the configuration
		asm.LoadMem(asm.R1, asm.R7, cfgActive, asm.Word),
		asm.JEq.Imm(asm.R1, 0, "pass"),
		asm.LoadMem(asm.R2, asm.R6, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R1, ethIPv4, "ipv4"),
		asm.JEq.Imm(asm.R1, ethIPv6, "ipv6"),
		asm.Ja.Label("pass"),

		// IPv4: Ethernet 14 + IP 20 + TCP 20.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R4, 54),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 14, asm.Byte),
		asm.JNE.Imm(asm.R1, 0x45, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 23, asm.Byte),
		asm.JNE.Imm(asm.R1, 6, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 30, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, cfgVIP4, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R4, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 47, asm.Byte),
		asm.And.Imm(asm.R1, tcpSYN|tcpACK),
		asm.JEq.Imm(asm.R1, tcpSYN, "pass"),
		// struct bpf_sock_tuple.ipv4: saddr, daddr, sport, dport (12 bytes).
		asm.LoadMem(asm.R1, asm.R2, 26, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 30, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 34, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Mov.Imm(asm.R3, 12),
		asm.Mov.Imm(asm.R4, currentNetns),
		asm.Mov.Imm(asm.R5, 0),
		asm.FnSkcLookupTcp.Call(),
		asm.Ja.Label("judge"),

		// IPv6: Ethernet 14 + IPv6 40 + TCP 20, no extension headers.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R4, 74),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 20, asm.Byte),
		asm.JNE.Imm(asm.R1, 6, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 38, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, cfgVIP6, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R4, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 42, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, cfgVIP6+4, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R4, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 46, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, cfgVIP6+8, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R4, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 50, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, cfgVIP6+12, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R4, "pass"),
		asm.LoadMem(asm.R1, asm.R2, 67, asm.Byte),
		asm.And.Imm(asm.R1, tcpSYN|tcpACK),
		asm.JEq.Imm(asm.R1, tcpSYN, "pass"),
		// struct bpf_sock_tuple.ipv6: saddr, daddr, sport, dport (36 bytes),
		// copied from offset 22 (source address) on.
		asm.LoadMem(asm.R1, asm.R2, 22, asm.Word),
		asm.StoreMem(asm.RFP, -40, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 26, asm.Word),
		asm.StoreMem(asm.RFP, -36, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 30, asm.Word),
		asm.StoreMem(asm.RFP, -32, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 34, asm.Word),
		asm.StoreMem(asm.RFP, -28, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 38, asm.Word),
		asm.StoreMem(asm.RFP, -24, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 42, asm.Word),
		asm.StoreMem(asm.RFP, -20, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 46, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 50, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 54, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -40),
		asm.Mov.Imm(asm.R3, 36),
		asm.Mov.Imm(asm.R4, currentNetns),
		asm.Mov.Imm(asm.R5, 0),
		asm.FnSkcLookupTcp.Call(),

		// R0: a socket of ours for the 4-tuple, or NULL.
		asm.JEq.Imm(asm.R0, 0, "forward").WithSymbol("judge"),
		asm.LoadMem(asm.R8, asm.R0, sockState, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.FnSkRelease.Call(),
		asm.JEq.Imm(asm.R8, tcpTimeWait, "forward"),
		asm.JNE.Imm(asm.R8, tcpListen, "pass"),

		// Not ours: to the previous master.
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("forward"),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, cfgDstMAC),
		asm.Mov.Imm(asm.R4, 12),
		asm.Mov.Imm(asm.R5, 0),
		asm.FnSkbStoreBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R7, cfgIfindex, asm.Word),
		asm.Mov.Imm(asm.R2, 0), // egress
		asm.FnRedirect.Call(),
		asm.Return(),

		asm.Mov.Imm(asm.R0, tcActOK).WithSymbol("pass"),
		asm.Return(),
	}
}
