// Package packaging builds hbd's Debian packages: it lays out the binary,
// the systemd units, the example configuration and the docs in a staging
// tree, writes the control files (control, conffiles, md5sums, maintainer
// scripts) and calls Debian's dpkg-deb to pack them. `go run
// ./internal/packaging/mkdeb` is its command.
//
// Two packages come from one tree, as nginx-light and nginx-full do: hbd
// (L2 VIPs only, built with the nobgp tag, small) and hbd-bgp (the same
// daemon with the embedded BGP announcer). They carry the same files at
// the same paths but for the doc dir; hbd-bgp conflicts with, replaces and
// provides hbd, so installing one removes the other.
package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"debug/elf"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hbdproject/hbd/systemd"
)

//go:embed debian/postinst debian/prerm debian/postrm debian/hbd.sysusers debian/hbd.tmpfiles debian/lintian-overrides debian/hbd.bash debian/_hbd
var debianFiles embed.FS

// Variant is one of the packages built from hbd's tree.
type Variant struct {
	// Package is the Debian package name: hbd or hbd-bgp.
	Package string
	// Tags are the build tags of its binary.
	Tags string
	// MaxSize bounds its stripped binary, in bytes.
	MaxSize int64
	// BGP says the binary has the BGP announcer.
	BGP bool
}

var (
	// L2 is the hbd package: VIPs on the local segment (ARP/NDP) only.
	L2 = Variant{Package: "hbd", Tags: BuildTags + ",nobgp", MaxSize: MaxBinarySizeNoBGP}
	// WithBGP is the hbd-bgp package: hbd with the embedded BGP announcer
	// (docs/bgp.md); it conflicts with, replaces and provides hbd.
	WithBGP = Variant{Package: "hbd-bgp", Tags: BuildTags, MaxSize: MaxBinarySize, BGP: true}
	// Variants are the packages mkdeb builds by default.
	Variants = []Variant{L2, WithBGP}
)

// VariantByName returns the variant whose package is name.
func VariantByName(name string) (Variant, error) {
	for _, v := range Variants {
		if v.Package == name {
			return v, nil
		}
	}
	return Variant{}, fmt.Errorf("packaging: no package %q (there are hbd and hbd-bgp)", name)
}

// Spec says what to pack.
type Spec struct {
	// Variant is the package to make: L2 (hbd) or WithBGP (hbd-bgp).
	Variant Variant
	// Version is the Debian version with its revision, e.g. 1.2.0-1 or
	// 0.0.0~git20260101.abcdef0-1.
	Version string
	// Date is the changelog entry's date (the commit's, for a reproducible
	// package); zero means now.
	Date time.Time
	// Arch is the Debian architecture of Binary: amd64, arm64, …
	Arch string
	// Binary is the hbd executable built for Arch with Variant's tags.
	Binary string
	// DocsDir holds the Markdown docs to install in /usr/share/doc/PACKAGE:
	// Docs and every file they link to, and the sources of the man pages.
	DocsDir string
	// OutDir receives PACKAGE_<version>_<arch>.deb.
	OutDir string
}

// Docs are the files of DocsDir the package carries, besides those they
// link to (linkedDocs adds them).
var Docs = []string{"install.md", "config.md", "runbooks.md", "keepalived.md", "how-it-works.md", "cli.md", "webapp.md", "bgp.md"}

// ManPages are the manual pages, each made from a doc of DocsDir.
var ManPages = []ManPage{
	{Name: "hbd", Section: 8, Source: "cli.md", Summary: "keep a virtual IP alive across hosts"},
	{Name: "hbd.yaml", Section: 5, Source: "config.md", Summary: "configuration of the hbd daemon"},
}

// Depends is the package's Depends field: the user and the directory
// modes come from sysusers.d and tmpfiles.d, as debhelper's
// dh_installsysusers and dh_installtmpfiles arrange.
const Depends = "systemd | systemd-standalone-sysusers | systemd-sysusers, systemd | systemd-standalone-tmpfiles"

// Conffiles are the package's configuration files: dpkg keeps an admin's
// changes to them across upgrades.
var Conffiles = []string{"/etc/hbd/hbd.yaml", "/etc/hbd/webapp.env"}

var (
	versionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]*[a-f][0-9a-f]*$`)
)

// DebianVersion turns a version in git-describe form into a valid Debian
// version: a leading "v" goes, hyphens become "+", and a version that does
// not start with a digit, or is a bare commit id, gets a "0.0.0~" prefix
// ("dev" → "0.0.0~dev", "0d8a961-dirty" → "0.0.0~0d8a961+dirty").
func DebianVersion(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '_':
			return '+'
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '+', r == '~':
			return r
		}
		return -1
	}, s)
	head, _, _ := strings.Cut(s, "+")
	if s == "" || s[0] < '0' || s[0] > '9' || commitRE.MatchString(head) {
		s = "0.0.0~" + s // "dev", or a bare commit from git describe --always
	}
	return strings.TrimSuffix(s, "~")
}

// BuildTags are the build tags of both packages' binaries (hbd adds
// nobgp). nethttpomithttp2
// leaves HTTP/2 out of net/http: hbd serves metrics, health and the web
// app over plain HTTP/1.1 (TLS is the reverse proxy's job), and the HTTP/2
// code was half a megabyte of the binary.
const BuildTags = "nethttpomithttp2"

// MaxBinarySize bounds the hbd-bgp package's (stripped) binary, in bytes.
//
// The BGP announcer (issue 17) embeds GoBGP v4: its pkg/server takes its
// requests as the gRPC API's protobuf messages, so linking it links the
// api package's descriptors, google.golang.org/protobuf and grpc
// (importing api alone measured 24.15 MB; pkg/server in use, 29.62 MB),
// and no smaller import of GoBGP can run a session. The issue wants the
// speaker inside hbd, not a separate bgpd, so this budget is 31 MB, with
// room for 1.4 MB of growth. Only those who announce VIPs over BGP install
// hbd-bgp; everyone else gets the hbd package and MaxBinarySizeNoBGP.
const MaxBinarySize = 31_000_000

// MaxBinarySizeNoBGP bounds the hbd package's (stripped) binary, built
// with BuildTags plus nobgp: L2 only, no GoBGP, gRPC or protobuf. A daemon
// that runs on every host should not weigh more (keepalived is under 1 MB;
// hbd was 21 MB before its lab moved out, 11.66 MB before BGP, 11.86 MB
// with nobgp, 12.03 MB with VIP groups, and is 11.90 MB since the nobgp
// build leaves out the dummy interface's link creation): issue 14's
// target, 12 MB.
const MaxBinarySizeNoBGP = 12_000_000

// Compile builds v's hbd binary into out: static (CGO_ENABLED=0), trimmed
// and stripped, with its version, commit and date stamped in. It runs go
// build in the current directory's module.
func (v Variant) Compile(ctx context.Context, out, arch, version, commit string, date time.Time) error {
	return CompileTags(ctx, out, arch, version, commit, date, v.Tags)
}

// CompileTags is Compile with other build tags, e.g. BuildTags+",nobgp".
func CompileTags(ctx context.Context, out, arch, version, commit string, date time.Time, tags string) error {
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s -X main.buildDate=%s", version, commit, date.UTC().Format(time.RFC3339))
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags="+tags, "-ldflags="+ldflags, "-o", out, "github.com/hbdproject/hbd/cmd/hbd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging: go build ./cmd/hbd: %w\n%s", err, msg)
	}
	return nil
}

// checkStatic refuses a dynamically linked binary: the package declares no
// dependencies, so the binary must need no libc (build with CGO_ENABLED=0).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("packaging: %s is not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("packaging: %s is dynamically linked; build it with CGO_ENABLED=0 (the package depends on nothing)", path)
		}
	}
	return nil
}

// file is one file of the package's data.
type file struct {
	path string // absolute, in the installed system
	mode os.FileMode
	data []byte
}

// Build writes the package and returns its path. It needs dpkg-deb.
func Build(ctx context.Context, s Spec) (string, error) {
	if !versionRE.MatchString(s.Version) {
		return "", fmt.Errorf("packaging: version %q: a Debian version starts with a digit and uses only letters, digits and . + ~ -", s.Version)
	}
	if s.Arch == "" {
		return "", fmt.Errorf("packaging: no architecture")
	}
	if _, err := VariantByName(s.Variant.Package); err != nil {
		return "", err
	}
	if err := checkStatic(s.Binary); err != nil {
		return "", err
	}
	files, err := s.files()
	if err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp("", "hbd-deb-")
	if err != nil {
		return "", fmt.Errorf("packaging: making the staging dir: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil {
		return "", err
	}

	var sums bytes.Buffer
	size := int64(0)
	for _, f := range files {
		if err := writeFile(filepath.Join(stage, f.path), f.data, f.mode); err != nil {
			return "", err
		}
		sum := md5.Sum(f.data)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), strings.TrimPrefix(f.path, "/"))
		size += (int64(len(f.data)) + 1023) / 1024
	}
	control := []file{
		{"DEBIAN/control", 0o644, []byte(s.control(size))},
		{"DEBIAN/conffiles", 0o644, []byte(strings.Join(Conffiles, "\n") + "\n")},
		{"DEBIAN/md5sums", 0o644, sums.Bytes()},
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		b, err := debianFiles.ReadFile("debian/" + script)
		if err != nil {
			return "", err
		}
		control = append(control, file{"DEBIAN/" + script, 0o755, b})
	}
	for _, f := range control {
		if err := writeFile(filepath.Join(stage, f.path), f.data, f.mode); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(s.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	out := filepath.Join(s.OutDir, fmt.Sprintf("%s_%s_%s.deb", s.Variant.Package, s.Version, s.Arch))
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--root-owner-group", "-Zxz", "--build", stage, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("packaging: dpkg-deb --build: %w\n%s", err, msg)
	}
	return out, nil
}

// writeFile writes data at p with exactly mode (whatever the umask), making
// the parent directories 0755.
func writeFile(p string, data []byte, mode os.FileMode) error {
	if err := mkdirs(filepath.Dir(p)); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	return os.Chmod(p, mode)
}

func mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := mkdirs(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("packaging: %w", err)
	}
	return os.Chmod(dir, 0o755)
}

// files lists the package's data files.
func (s Spec) files() ([]file, error) {
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("packaging: reading the hbd binary: %w", err)
	}
	fromFS := func(fsys fs.FS, name string) ([]byte, error) {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("packaging: %w", err)
		}
		return b, nil
	}
	pkg := s.Variant.Package
	doc := "/usr/share/doc/" + pkg // Debian policy 12.3: named after the binary package
	files := []file{{"/usr/bin/hbd", 0o755, bin}, {"/usr/share/lintian/overrides/" + pkg, 0o644, overrides(pkg)}}
	add := func(fsys fs.FS, name, dest string, mode os.FileMode) error {
		b, err := fromFS(fsys, name)
		if err == nil && strings.HasSuffix(name, ".service") {
			// Documentation= points into this package's doc dir.
			b = bytes.ReplaceAll(b, []byte("file:///usr/share/doc/hbd/"), []byte("file://"+doc+"/"))
		}
		if err == nil {
			files = append(files, file{dest, mode, b})
		}
		return err
	}
	for _, a := range []struct {
		fsys       fs.FS
		name, dest string
		mode       os.FileMode
	}{
		// /usr/lib, not /lib: the same directory on a merged-/usr bookworm,
		// and the only one allowed from trixie on.
		{systemd.Files, "hbd.service", "/usr/lib/systemd/system/hbd.service", 0o644},
		{systemd.Files, "hbd-webapp.service", "/usr/lib/systemd/system/hbd-webapp.service", 0o644},
		{systemd.Files, "pc01.yaml", "/etc/hbd/hbd.yaml", 0o644},
		// May hold the Redis password; systemd reads it as root.
		{systemd.Files, "webapp.env", "/etc/hbd/webapp.env", 0o600},
		{systemd.Files, "pc01.yaml", doc + "/examples/pc01.yaml", 0o644},
		{systemd.Files, "pc02.yaml", doc + "/examples/pc02.yaml", 0o644},
		{systemd.Files, "active-active.yaml", doc + "/examples/active-active.yaml", 0o644},
		{systemd.Files, "webapp.env", doc + "/examples/webapp.env", 0o644},
		{systemd.Files, "hbd-hooks.rules", doc + "/examples/50-hbd-hooks.rules", 0o644},
		{debianFiles, "debian/hbd.sysusers", "/usr/lib/sysusers.d/hbd.conf", 0o644},
		{debianFiles, "debian/hbd.tmpfiles", "/usr/lib/tmpfiles.d/hbd.conf", 0o644},
		{debianFiles, "debian/hbd.bash", "/usr/share/bash-completion/completions/hbd", 0o644},
		{debianFiles, "debian/_hbd", "/usr/share/zsh/vendor-completions/_hbd", 0o644},
	} {
		if err := add(a.fsys, a.name, a.dest, a.mode); err != nil {
			return nil, err
		}
	}
	docs := os.DirFS(s.DocsDir)
	shipped, err := linkedDocs(docs, Docs)
	if err != nil {
		return nil, err
	}
	for _, d := range shipped {
		if err := add(docs, d, path.Join(doc, d), 0o644); err != nil {
			return nil, err
		}
	}
	for _, m := range ManPages {
		src, err := fromFS(docs, m.Source)
		if err != nil {
			return nil, err
		}
		page, err := gz(m.Roff(src, s.date()))
		if err != nil {
			return nil, err
		}
		files = append(files, file{fmt.Sprintf("/usr/share/man/man%d/%s.%d.gz", m.Section, m.Name, m.Section), 0o644, page})
	}
	cr, err := copyright(s.Binary)
	if err != nil {
		return nil, err
	}
	cl, err := gz(s.changelog())
	if err != nil {
		return nil, err
	}
	files = append(files, file{doc + "/copyright", 0o644, cr}, file{doc + "/changelog.Debian.gz", 0o644, cl})
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files, nil
}

// overrides is the lintian overrides file of pkg: debian/lintian-overrides
// is written for hbd; each override names the package and may name a file
// of its doc dir.
func overrides(pkg string) []byte {
	b, _ := debianFiles.ReadFile("debian/lintian-overrides") // embedded: always there
	var out strings.Builder
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "hbd: "); ok {
			l = pkg + ": " + strings.ReplaceAll(rest, "[usr/share/doc/hbd/", "[usr/share/doc/"+pkg+"/")
		}
		out.WriteString(l)
	}
	return []byte(out.String())
}

// Relations are the packages' relations to each other (Debian policy
// 7.6.2, as nginx-light and nginx-full do): they ship the same paths, so
// each conflicts with and replaces the other, and dpkg removes the one
// installed when the other is installed, handing over the conffiles; hbd-bgp
// also provides hbd, so what depends on hbd is content with either. Both
// sides declare it: dpkg -i of one refuses while the other is installed
// if only the other names the conflict.
var Relations = map[string]string{
	"hbd":     "Conflicts: hbd-bgp\nReplaces: hbd-bgp\n",
	"hbd-bgp": "Conflicts: hbd\nReplaces: hbd\nProvides: hbd\n",
}

func (s Spec) control(installedKiB int64) string {
	head := "Package: hbd\n"
	summary := "keeps a virtual IP alive across two hosts"
	variant := ` This package announces the VIPs on the local segment (ARP/NDP) only;
 hbd-bgp is the same daemon with an embedded BGP speaker, for routed
 networks.
`
	if s.Variant.BGP {
		head = "Package: " + s.Variant.Package + "\nSource: hbd\n"
		summary = "keeps a virtual IP alive across two hosts, with BGP"
		variant = ` This package is hbd with an embedded BGP speaker (GoBGP): besides the
 VIPs on the local segment, the master announces VIPs as host routes to
 upstream routers. It replaces the hbd package, whose binary is smaller
 (no GoBGP, gRPC or protobuf).
`
	}
	return fmt.Sprintf(`%sVersion: %s
Architecture: %s
Maintainer: The hbd project <hbd@example.org>
Installed-Size: %d
Depends: %s
Suggests: redis-server
%sSection: net
Priority: optional
Homepage: https://github.com/hbdproject/hbd
Description: %s
 hbd is a small daemon in the spirit of keepalived: two hosts exchange
 authenticated heartbeats over UDP and TCP, the master holds a virtual IP
 and announces it with gratuitous ARP / unsolicited neighbour
 advertisements, and a standby takes it over within a fraction of a second
 when the master, its link or its app fails. Planned handovers drain the
 local app first, so updates need no maintenance window.
 .
%s .
 The package also carries the demo web app (hbd webapp, sessions in Redis)
 and its unit, and hbd import-keepalived to convert a keepalived.conf.
`, head, s.Version, s.Arch, installedKiB, Depends, s.relations(), summary, variant)
}

// relations are the control fields relating the package to the other one.
func (s Spec) relations() string { return Relations[s.Variant.Package] }

func (s Spec) date() time.Time {
	if s.Date.IsZero() {
		return time.Now().UTC()
	}
	return s.Date.UTC()
}

// changelog is the package's Debian changelog: one entry for this build.
func (s Spec) changelog() []byte {
	upstream, _, _ := strings.Cut(s.Version, "-")
	return []byte(fmt.Sprintf("hbd (%s) unstable; urgency=medium\n\n  * Package of hbd %s, built by internal/packaging/mkdeb.\n    Changes: https://github.com/hbdproject/hbd/commits\n\n -- The hbd project <hbd@example.org>  %s\n",
		s.Version, upstream, s.date().Format(time.RFC1123Z)))
}

// gz compresses b as Debian wants it: best compression, no name or time
// in the header, so the same input gives the same bytes.
func gz(b []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("packaging: compressing: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("packaging: compressing: %w", err)
	}
	return out.Bytes(), nil
}

var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(?:#[^)]*)?\)`)

// linkedDocs returns seed and every file of docs they link to, following
// links in Markdown files transitively; a link to a directory takes the
// files in it. A link to a file that is not there is an error: the
// package would ship a dangling link.
func linkedDocs(docs fs.FS, seed []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	queue := append([]string(nil), seed...)
	for len(queue) > 0 {
		p := path.Clean(queue[0])
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		fi, err := fs.Stat(docs, p)
		if err != nil {
			return nil, fmt.Errorf("packaging: a doc links to %s, which is missing: %w", p, err)
		}
		if fi.IsDir() {
			ents, err := fs.ReadDir(docs, p)
			if err != nil {
				return nil, fmt.Errorf("packaging: %w", err)
			}
			for _, e := range ents {
				queue = append(queue, path.Join(p, e.Name()))
			}
			continue
		}
		out = append(out, p)
		if !strings.HasSuffix(p, ".md") {
			continue
		}
		b, err := fs.ReadFile(docs, p)
		if err != nil {
			return nil, fmt.Errorf("packaging: %w", err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			queue = append(queue, path.Join(path.Dir(p), target))
		}
	}
	sort.Strings(out)
	return out, nil
}
