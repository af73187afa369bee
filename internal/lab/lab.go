package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Addresses of the test bed. Only these documentation ranges are used.
var (
	Subnet4 = netip.MustParsePrefix("198.51.100.0/24")
	Subnet6 = netip.MustParsePrefix("2001:db8::/64")

	// VIP4 and VIP6 are the virtual addresses the e2e tests hand to hbd.
	// The lab itself never assigns them.
	VIP4 = netip.MustParsePrefix("198.51.100.10/24")
	VIP6 = netip.MustParsePrefix("2001:db8::10/64")
	// VIP4Second is a second IPv4 VIP, for a second VIP group (an
	// active-active pair). Not .20: that is the redis host's address.
	VIP4Second = netip.MustParsePrefix("198.51.100.110/24")
)

// Names inside the test bed.
const (
	HostIf        = "eth0"   // interface of every host namespace
	Bridge        = "br0"    // bridge in the LAN namespace
	DefaultPrefix = "hbd"    // default Options.Prefix
	nftTable      = "hbdlab" // bridge-family nftables table in the LAN namespace
	nftTimedSet   = "timed"  // its set of bridge ports in a timed blackout
)

// DefaultHosts are the hosts New creates when Options.Hosts is empty.
var DefaultHosts = []string{"pc01", "pc02", "redis", "client"}

// Sentinel errors.
var (
	ErrClosed      = errors.New("lab: closed")
	ErrUnknownHost = errors.New("lab: unknown host")
	ErrNoNeighbor  = errors.New("lab: no neighbour entry")
	ErrForbidden   = errors.New("lab: destination outside the test ranges")
)

// Options configures New. The zero value gives the default four hosts.
type Options struct {
	// Prefix starts every namespace name; default "hbd". Lowercase letters and
	// digits, at most 10 characters. The lab's ID is Prefix-XXXX with a random
	// hex suffix.
	Prefix string
	// Hosts to create; default DefaultHosts. Lowercase letters and digits,
	// starting with a letter, at most 13 characters (the bridge port is
	// "p-"+name, an interface name of at most 15). "pcNN" (NN 01..89) gets
	// 198.51.100.(10+NN); "redis" .20; "client" .100; other names .30 upwards
	// in order, past the VIPs' addresses. The IPv6 address repeats the IPv4
	// host digits: .11 → ::11.
	Hosts []string
	// Logger receives lifecycle events; default: discard.
	Logger *slog.Logger
	// Dir holds process logs and Redis's working directory. Default: a new
	// temporary directory that Close removes. A given Dir is never removed.
	Dir string
	// StopTimeout bounds how long Close waits after SIGTERM before SIGKILL;
	// default 3s.
	StopTimeout time.Duration
	// Detach lets the processes Start runs outlive the program that started
	// them (no Pdeathsig), for `hbd-lab --keep`; whoever keeps them must end
	// them later by PID. Close still ends them. Default false.
	Detach bool
}

// Host is one host namespace.
type Host struct {
	Name  string           // e.g. "pc01"
	Netns string           // namespace name, e.g. "hbd-3f9a-pc01"
	Port  string           // bridge port in the LAN namespace, e.g. "p-pc01"
	IPv4  netip.Addr       // on HostIf, /24
	IPv6  netip.Addr       // on HostIf, /64
	MAC   net.HardwareAddr // of HostIf
}

// Prefix4 is the host's IPv4 address with its prefix length.
func (h *Host) Prefix4() netip.Prefix { return netip.PrefixFrom(h.IPv4, Subnet4.Bits()) }

// Prefix6 is the host's IPv6 address with its prefix length.
func (h *Host) Prefix6() netip.Prefix { return netip.PrefixFrom(h.IPv6, Subnet6.Bits()) }

// Lab is a running test bed. Its methods are safe for concurrent use.
type Lab struct {
	log         *slog.Logger
	id          string
	lanNS       string
	dir         string
	ownDir      bool
	stopTimeout time.Duration
	detach      bool // Options.Detach

	hosts map[string]*Host
	order []string
	nsc   map[string]*nsConn // by host name, and "" for the LAN namespace

	created []string // namespaces this lab created, in creation order

	mu     sync.Mutex
	closed bool
	procs  []*Proc
	faults map[string]faultState
	redis  *Proc
	seq    int

	spawn     chan func()   // runs fork+exec on one long-lived thread
	spawnDone chan struct{} // closed when the spawner goroutine has exited

	closeOnce sync.Once
	closeErr  error
}

// nsConn is an open namespace: a file descriptor for setns and a netlink
// handle bound to it, created once and reused.
type nsConn struct {
	name string
	mu   sync.RWMutex // write-held only by close
	fd   netns.NsHandle
	h    *netlink.Handle
	done bool
}

func (c *nsConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	if c.h != nil {
		c.h.Close()
	}
	if c.fd.IsOpen() {
		c.fd.Close()
	}
}

// netlink runs fn with the namespace's netlink handle.
func (c *nsConn) netlink(fn func(h *netlink.Handle) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.done {
		return ErrClosed
	}
	return fn(c.h)
}

var (
	prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)
	hostRE   = regexp.MustCompile(`^[a-z][a-z0-9]{0,12}$`)
	pcRE     = regexp.MustCompile(`^pc([0-8][0-9])$`)
)

// New creates the namespaces, bridge, links, addresses and nftables table.
// If anything fails it removes what it made before returning the error.
func New(ctx context.Context, opts Options) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: creating network namespaces needs root")
	}
	if err := checkCommands(Prereqs[:2]); err != nil { // ip, nft
		return nil, err
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab: invalid prefix %q (want %s)", prefix, prefixRE)
	}
	names := opts.Hosts
	if len(names) == 0 {
		names = DefaultHosts
	}
	hosts, err := plan(names)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Lab{
		log:         log,
		stopTimeout: opts.StopTimeout,
		detach:      opts.Detach,
		hosts:       hosts,
		order:       slices.Clone(names),
		nsc:         map[string]*nsConn{},
		faults:      map[string]faultState{},
	}
	if l.stopTimeout <= 0 {
		l.stopTimeout = 3 * time.Second
	}
	l.startSpawner()
	if err := l.build(ctx, prefix, opts.Dir); err != nil {
		cerr := l.Close()
		return nil, errors.Join(err, cerr)
	}
	l.log.Info("lab: up", "lab", l.id, "hosts", strings.Join(l.order, ","), "dir", l.dir)
	return l, nil
}

// plan assigns names and addresses without touching the system: fixed
// octets first, then the others from .30 upwards around them.
func plan(names []string) (map[string]*Host, error) {
	hosts := map[string]*Host{}
	octets := map[string]int{}
	used := map[int]string{}
	for _, n := range names {
		if !hostRE.MatchString(n) || n == "lan" {
			return nil, fmt.Errorf("lab: invalid host name %q (want %s, not \"lan\")", n, hostRE)
		}
		if hosts[n] != nil {
			return nil, fmt.Errorf("lab: duplicate host name %q", n)
		}
		hosts[n] = &Host{Name: n, Port: "p-" + n}
		octet := 0
		switch m := pcRE.FindStringSubmatch(n); {
		case n == "redis":
			octet = 20
		case n == "client":
			octet = 100
		case m != nil && m[1] != "00":
			octet = 10 + int(m[1][0]-'0')*10 + int(m[1][1]-'0')
		}
		if octet != 0 {
			octets[n], used[octet] = octet, n
		}
	}
	for _, vip := range []netip.Prefix{VIP4, VIP4Second} { // never a host's
		used[int(vip.Addr().As4()[3])] = "vip"
	}
	next := 30
	for _, n := range names {
		if octets[n] != 0 {
			continue
		}
		for used[next] != "" {
			next++
		}
		if next >= 255 {
			return nil, fmt.Errorf("lab: no address left for host %q", n)
		}
		octets[n], used[next] = next, n
	}
	for n, o := range octets {
		hosts[n].IPv4 = netip.AddrFrom4([4]byte{198, 51, 100, byte(o)})
		hosts[n].IPv6 = netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", o))
	}
	return hosts, nil
}

func (l *Lab) build(ctx context.Context, prefix, dir string) error {
	if err := l.addNamespaces(ctx, prefix); err != nil {
		return err
	}
	if dir == "" {
		d, err := os.MkdirTemp("", l.id+"-")
		if err != nil {
			return fmt.Errorf("lab: creating temp dir: %w", err)
		}
		l.dir, l.ownDir = d, true
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("lab: creating dir: %w", err)
		}
		l.dir = dir
	}
	// Open every namespace once: a fd for setns and a netlink handle.
	for _, name := range append([]string{""}, l.order...) {
		ns := l.lanNS
		if name != "" {
			ns = l.hosts[name].Netns
		}
		fd, err := netns.GetFromName(ns)
		if err != nil {
			return fmt.Errorf("lab: opening namespace %s: %w", ns, err)
		}
		c := &nsConn{name: ns, fd: fd}
		l.nsc[name] = c
		h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("lab: netlink handle for %s: %w", ns, err)
		}
		c.h = h
		if err := h.SetSocketTimeout(5 * time.Second); err != nil {
			return fmt.Errorf("lab: netlink timeout for %s: %w", ns, err)
		}
	}
	// Before the veth peers appear in the hosts: no DAD for new interfaces.
	for _, name := range l.order {
		if err := l.sysctl(name, map[string]string{
			"net/ipv6/conf/all/accept_dad":     "0",
			"net/ipv6/conf/default/accept_dad": "0",
		}); err != nil {
			return err
		}
	}
	var lan strings.Builder
	fmt.Fprintf(&lan, "link set lo up\nlink add %s type bridge mcast_snooping 0\n", Bridge)
	for _, name := range l.order {
		h := l.hosts[name]
		fmt.Fprintf(&lan, "link add %s type veth peer name %s netns %s\n", h.Port, HostIf, h.Netns)
		fmt.Fprintf(&lan, "link set %s master %s\nlink set %s up\n", h.Port, Bridge, h.Port)
	}
	fmt.Fprintf(&lan, "link set %s up\n", Bridge)
	if _, err := runCommand(ctx, lan.String(), "ip", "-n", l.lanNS, "-batch", "-"); err != nil {
		return err
	}
	for _, name := range l.order {
		h := l.hosts[name]
		script := fmt.Sprintf("link set lo up\nlink set %[1]s up\naddr add %[2]s dev %[1]s\naddr add %[3]s dev %[1]s\n",
			HostIf, h.Prefix4(), h.Prefix6())
		if _, err := runCommand(ctx, script, "ip", "-n", h.Netns, "-batch", "-"); err != nil {
			return err
		}
		err := l.nsc[name].netlink(func(nh *netlink.Handle) error {
			link, err := nh.LinkByName(HostIf)
			if err != nil {
				return err
			}
			h.MAC = slices.Clone(link.Attrs().HardwareAddr)
			return nil
		})
		if err != nil {
			return fmt.Errorf("lab: reading MAC of %s: %w", name, err)
		}
	}
	if err := l.waitAddressesUsable(ctx); err != nil {
		return err
	}
	if err := l.setupNft(ctx); err != nil {
		return err
	}
	if testHookBuilt != nil {
		return testHookBuilt()
	}
	return nil
}

// waitAddressesUsable waits until no host address is tentative. Even with
// DAD off, the kernel keeps an IPv6 address tentative until its link has
// carrier, and binding it meanwhile fails with "cannot assign requested
// address" (a redis-server on 2001:db8::20 did, now and then).
func (l *Lab) waitAddressesUsable(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for _, name := range l.order {
		for {
			tentative := 0
			err := l.nsc[name].netlink(func(nh *netlink.Handle) error {
				addrs, err := nh.AddrList(nil, netlink.FAMILY_ALL)
				for _, a := range addrs {
					if a.Flags&unix.IFA_F_TENTATIVE != 0 {
						tentative++
					}
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("lab: listing addresses of %s: %w", name, err)
			}
			if tentative == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("lab: %s still has %d tentative address(es) after 5s", name, tentative)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// testHookBuilt, if set by a test, runs at the end of build; an error makes
// New fail after everything was created.
var testHookBuilt func() error

// addNamespaces picks a free random suffix and creates the LAN and host
// namespaces, recording each one it created.
func (l *Lab) addNamespaces(ctx context.Context, prefix string) error {
	const attempts = 8
	for i := 0; ; i++ {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("lab: random suffix: %w", err)
		}
		id := prefix + "-" + hex.EncodeToString(b[:])
		lan := id + "-lan"
		_, err := runCommand(ctx, "", "ip", "netns", "add", lan)
		if err == nil {
			l.id, l.lanNS = id, lan
			l.created = append(l.created, lan)
			break
		}
		if _, serr := os.Stat(filepath.Join("/run/netns", lan)); serr != nil || i+1 >= attempts {
			return err // not a name collision, or too many collisions
		}
	}
	for _, name := range l.order {
		ns := l.id + "-" + name
		if _, err := runCommand(ctx, "", "ip", "netns", "add", ns); err != nil {
			return err
		}
		l.created = append(l.created, ns)
		l.hosts[name].Netns = ns
	}
	return nil
}

// sysctl writes /proc/sys entries (path relative to /proc/sys) from a thread
// inside the host's namespace; /proc/sys/net resolves per thread.
func (l *Lab) sysctl(host string, kv map[string]string) error {
	return l.inNetns(host, func() error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return fmt.Errorf("lab: sysctl %s=%s in %s: %w", k, v, host, err)
			}
		}
		return nil
	})
}

// ID is the lab's name prefix plus random suffix, e.g. "hbd-3f9a".
func (l *Lab) ID() string { return l.id }

// LANNetns is the name of the namespace holding the bridge.
func (l *Lab) LANNetns() string { return l.lanNS }

// Dir is the directory holding process logs.
func (l *Lab) Dir() string { return l.dir }

// Hosts lists host names in creation order.
func (l *Lab) Hosts() []string { return slices.Clone(l.order) }

// Host returns a copy of the named host, or nil if there is none.
func (l *Lab) Host(name string) *Host {
	h := l.hosts[name]
	if h == nil {
		return nil
	}
	c := *h
	c.MAC = slices.Clone(h.MAC)
	return &c
}

// MAC is the hardware address of the host's HostIf, or nil for an unknown host.
func (l *Lab) MAC(host string) net.HardwareAddr {
	if h := l.hosts[host]; h != nil {
		return slices.Clone(h.MAC)
	}
	return nil
}

func (l *Lab) host(name string) (*Host, error) {
	h := l.hosts[name]
	if h == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownHost, name)
	}
	return h, nil
}

// Close stops every process the lab started (SIGTERM to its process group,
// SIGKILL after StopTimeout), deletes the namespaces it created by exact name
// and removes its own temporary directory. It is idempotent and safe for
// concurrent use; later calls return the first call's result. It takes at most
// about StopTimeout plus a few seconds.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	l.mu.Lock()
	l.closed = true
	procs := slices.Clone(l.procs)
	l.mu.Unlock()

	var errs []error
	var wg sync.WaitGroup
	perr := make([]error, len(procs))
	for i, p := range procs {
		wg.Go(func() { perr[i] = p.stop(l.stopTimeout) })
	}
	wg.Wait()
	errs = append(errs, perr...)
	if l.spawn != nil {
		close(l.spawn) // no Start can be sending: closed is set under mu
		<-l.spawnDone
	}

	for _, c := range l.nsc {
		c.close()
	}
	for _, ns := range slices.Backward(l.created) {
		errs = append(errs, deleteNetns(ns))
	}
	if l.ownDir && l.dir != "" {
		errs = append(errs, os.RemoveAll(l.dir))
	}
	err := errors.Join(errs...)
	if l.id != "" {
		l.log.Info("lab: closed", "lab", l.id, "err", err)
	}
	return err
}

// deleteNetns removes a named namespace: `ip netns del`, or, if that fails,
// the same steps by hand (detach the bind mount, remove the file).
func deleteNetns(ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := runCommand(ctx, "", "ip", "netns", "del", ns)
	if err == nil {
		return nil
	}
	p := filepath.Join("/run/netns", ns)
	if _, serr := os.Stat(p); errors.Is(serr, os.ErrNotExist) {
		return nil
	}
	uerr := unix.Unmount(p, unix.MNT_DETACH)
	rerr := os.Remove(p)
	if rerr == nil || errors.Is(rerr, os.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("lab: deleting namespace %s: %w (%s); by hand: %w", ns, err, strings.TrimSpace(string(out)), errors.Join(uerr, rerr))
}
