package handoff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few bpf(2) commands the chain needs, made directly: two maps and
// their updates, a program load and a TCX link. A library's loader (BTF,
// feature probes, kallsyms, an ELF reader) cost the daemon 1.5 MB of
// binary for these few calls.
// Layouts follow union bpf_attr in include/uapi/linux/bpf.h.
const (
	cmdMapCreate     = 0
	cmdMapUpdateElem = 2
	cmdMapDeleteElem = 3
	cmdProgLoad      = 5
	cmdLinkCreate    = 28

	mapTypeHash          = 1
	mapTypeArray         = 2
	progTypeSchedCLS     = 3
	attachTypeTCXIngress = 46
	verifierLogCapacity  = 64 << 10
)

func bpfCall(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// name16 is an object name as the kernel takes it: at most 15 bytes and a
// NUL.
func name16(s string) (n [16]byte) {
	copy(n[:15], s)
	return n
}

type mapCreateAttr struct {
	mapType, keySize, valueSize, maxEntries, mapFlags, innerMapFD, numaNode uint32
	name                                                                    [16]byte
}

// newMap creates a map of the type and sizes given and returns its
// descriptor.
func newMap(name string, mapType, keySize, valueSize, entries uint32) (int, error) {
	a := mapCreateAttr{mapType: mapType, keySize: keySize, valueSize: valueSize, maxEntries: entries, name: name16(name)}
	fd, err := bpfCall(cmdMapCreate, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		return -1, fmt.Errorf("bpf map create: %w", err)
	}
	return fd, nil
}

type mapElemAttr struct {
	mapFD      uint32
	_          uint32
	key, value uint64
	flags      uint64
}

// mapPut sets the map's entry for key to value.
func mapPut(fd int, key, value []byte) error {
	a := mapElemAttr{mapFD: uint32(fd), key: uint64(uintptr(unsafe.Pointer(&key[0]))), value: uint64(uintptr(unsafe.Pointer(&value[0])))}
	_, err := bpfCall(cmdMapUpdateElem, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if err != nil {
		return fmt.Errorf("bpf map update: %w", err)
	}
	return nil
}

// mapDelete removes the map's entry for key; an absent one is no error.
func mapDelete(fd int, key []byte) error {
	a := mapElemAttr{mapFD: uint32(fd), key: uint64(uintptr(unsafe.Pointer(&key[0])))}
	_, err := bpfCall(cmdMapDeleteElem, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(key)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("bpf map delete: %w", err)
	}
	return nil
}

// u32 is a u32 map key or value in the host's order.
func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

type progLoadAttr struct {
	progType, insnCnt           uint32
	insns, license              uint64
	logLevel, logSize           uint32
	logBuf                      uint64
	kernVersion, progFlags      uint32
	progName                    [16]byte
	progIfindex, expectedAttach uint32
}

// loadSchedCLS loads insns as a tc classifier and returns its descriptor.
// When the verifier refuses the program, the error carries the end of its
// log.
func loadSchedCLS(name string, insns []insn) (int, error) {
	b, err := assemble(insns)
	if err != nil {
		return -1, fmt.Errorf("assembling: %w", err)
	}
	license := []byte("GPL\x00")
	a := progLoadAttr{progType: progTypeSchedCLS, insnCnt: uint32(len(b) / 8),
		insns: uint64(uintptr(unsafe.Pointer(&b[0]))), license: uint64(uintptr(unsafe.Pointer(&license[0]))),
		progName: name16(name)}
	fd, err := bpfCall(cmdProgLoad, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err == nil {
		runtime.KeepAlive(b)
		runtime.KeepAlive(license)
		return fd, nil
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINVAL) {
		return -1, fmt.Errorf("bpf prog load: %w", err)
	}
	// Again with the verifier's log, to say why.
	log := make([]byte, verifierLogCapacity)
	a.logLevel, a.logSize, a.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	fd, err2 := bpfCall(cmdProgLoad, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(b)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err2 == nil {
		return fd, nil
	}
	msg := string(bytes.TrimRight(log, "\x00"))
	if len(msg) > 400 {
		msg = "…" + msg[len(msg)-400:]
	}
	return -1, fmt.Errorf("bpf prog load: %w: verifier: %s", err, msg)
}

type linkCreateAttr struct {
	progFD, targetIfindex, attachType, flags uint32
	relativeFD                               uint32
	_                                        uint32
	expectedRevision                         uint64
}

// attachTCXIngress links prog to ifindex's TCX ingress and returns the
// link's descriptor; closing it detaches the program.
func attachTCXIngress(prog, ifindex int) (int, error) {
	a := linkCreateAttr{progFD: uint32(prog), targetIfindex: uint32(ifindex), attachType: attachTypeTCXIngress}
	fd, err := bpfCall(cmdLinkCreate, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		return -1, fmt.Errorf("bpf link create (TCX ingress): %w", err)
	}
	return fd, nil
}
