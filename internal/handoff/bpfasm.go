package handoff

import (
	"encoding/binary"
	"fmt"
)

// A tiny eBPF assembler for the one program this package loads: the
// instructions it uses and labelled jumps, nothing else (see "eBPF
// Instruction Set Specification", RFC 9669). It replaces cilium/ebpf's
// assembler, whose package links an ELF and zstd reader into the daemon.

// reg is an eBPF register; rFP (r10) is the read-only frame pointer.
type reg uint8

const (
	r0 reg = iota
	r1
	r2
	r3
	r4
	r5
	r6
	r7
	r8
	r9
	rFP
)

// size is a memory access width.
type size uint8

const (
	word  size = 0x00 // BPF_W
	half  size = 0x08 // BPF_H
	byte_ size = 0x10 // BPF_B
)

// Opcodes (class | op | source) and helper function ids.
const (
	opALU64 = 0x07
	opJMP   = 0x05
	opLDX   = 0x01 | 0x60 // BPF_LDX | BPF_MEM
	opSTX   = 0x03 | 0x60 // BPF_STX | BPF_MEM
	opST    = 0x02 | 0x60 // BPF_ST | BPF_MEM
	opLDDW  = 0x18        // BPF_LD | BPF_IMM | BPF_DW: a two-slot 64-bit load
	srcX    = 0x08

	aluAdd = 0x00
	aluAnd = 0x50
	aluMov = 0xb0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJNE  = 0x50
	jmpCall = 0x80
	jmpExit = 0x90

	pseudoMapFD = 1 // src of a 64-bit load whose immediate is a map's descriptor

	fnMapLookupElem = 1
	fnSkbStoreBytes = 9
	fnRedirect      = 23
	fnSkRelease     = 86
	fnSkcLookupTcp  = 99
)

// insn is one instruction, with an optional label it defines (sym) and one
// it jumps to (ref).
type insn struct {
	op       uint8
	dst, src reg
	off      int16
	imm      int32
	sym, ref string
}

// at labels an instruction as a jump target.
func (i insn) at(label string) insn { i.sym = label; return i }

func movReg(dst, src reg) insn     { return insn{op: opALU64 | aluMov | srcX, dst: dst, src: src} }
func movImm(dst reg, k int32) insn { return insn{op: opALU64 | aluMov, dst: dst, imm: k} }
func addImm(dst reg, k int32) insn { return insn{op: opALU64 | aluAdd, dst: dst, imm: k} }
func andImm(dst reg, k int32) insn { return insn{op: opALU64 | aluAnd, dst: dst, imm: k} }

// ldx loads dst = *(size *)(src + off).
func ldx(dst, src reg, off int16, sz size) insn {
	return insn{op: opLDX | uint8(sz), dst: dst, src: src, off: off}
}

// stx stores *(size *)(dst + off) = src.
func stx(dst reg, off int16, src reg, sz size) insn {
	return insn{op: opSTX | uint8(sz), dst: dst, src: src, off: off}
}

// stImm stores *(size *)(dst + off) = k.
func stImm(dst reg, off int16, k int32, sz size) insn {
	return insn{op: opST | uint8(sz), dst: dst, off: off, imm: k}
}

// ldMapFD loads a pointer to the map with descriptor fd (two slots).
func ldMapFD(dst reg, fd int) insn {
	return insn{op: opLDDW, dst: dst, src: pseudoMapFD, imm: int32(fd)}
}

func jmpImm(op uint8, dst reg, k int32, label string) insn {
	return insn{op: opJMP | op, dst: dst, imm: k, ref: label}
}

func jmpReg(op uint8, dst, src reg, label string) insn {
	return insn{op: opJMP | op | srcX, dst: dst, src: src, ref: label}
}

func ja(label string) insn { return insn{op: opJMP | jmpJA, ref: label} }
func call(fn int32) insn   { return insn{op: opJMP | jmpCall, imm: fn} }
func exit() insn           { return insn{op: opJMP | jmpExit} }

// slots is how many 8-byte slots the instruction takes: two for a 64-bit
// load, one for the rest.
func (i insn) slots() int16 {
	if i.op == opLDDW {
		return 2
	}
	return 1
}

// assemble encodes prog in the host's byte order, resolving labels.
func assemble(prog []insn) ([]byte, error) {
	at := map[string]int16{}
	var pc int16
	for _, i := range prog {
		if i.sym != "" {
			if _, dup := at[i.sym]; dup {
				return nil, fmt.Errorf("label %q defined twice", i.sym)
			}
			at[i.sym] = pc
		}
		pc += i.slots()
	}
	out := make([]byte, 0, int(pc)*8)
	pc = 0
	for n, i := range prog {
		if i.ref != "" {
			target, ok := at[i.ref]
			if !ok {
				return nil, fmt.Errorf("instruction %d jumps to undefined label %q", n, i.ref)
			}
			i.off = target - (pc + 1)
		}
		out = append(out, i.op, uint8(i.src)<<4|uint8(i.dst)&0x0f)
		out = binary.NativeEndian.AppendUint16(out, uint16(i.off))
		out = binary.NativeEndian.AppendUint32(out, uint32(i.imm))
		if i.op == opLDDW {
			out = append(out, make([]byte, 8)...) // the upper 32 bits: zero
		}
		pc += i.slots()
	}
	return out, nil
}
