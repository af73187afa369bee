package packaging

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/testenv"
)

const testVersion = "1.2.3~test1-1"

var (
	debOnce sync.Once
	debPath string
	debErr  error
	debDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

// builtDeb builds hbd and its package once for all tests.
func builtDeb(t *testing.T) string {
	t.Helper()
	testenv.RequireCommand(t, "dpkg-deb", "dpkg")
	debOnce.Do(func() {
		if debDir, debErr = os.MkdirTemp("", "hbd-deb-test-"); debErr != nil {
			return
		}
		bin := filepath.Join(debDir, "hbd")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if debErr = Compile(ctx, bin, "amd64", "1.2.3~test1", "0123456789abcdef", time.Now()); debErr != nil {
			return
		}
		debPath, debErr = Build(ctx, Spec{Version: testVersion, Arch: "amd64", Binary: bin, DocsDir: "../../docs", OutDir: filepath.Join(debDir, "dist")})
	})
	if debErr != nil {
		t.Fatalf("building the package: %v", debErr)
	}
	return debPath
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestBinarySize keeps the shipped daemon lean.
func TestBinarySize(t *testing.T) {
	builtDeb(t)
	fi, err := os.Stat(filepath.Join(debDir, "hbd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shipped hbd: %d bytes", fi.Size())
	if fi.Size() > MaxBinarySize {
		t.Errorf("shipped hbd is %d bytes, over the %d-byte budget: see what grew with go tool nm -size -sort size", fi.Size(), MaxBinarySize)
	}
	// Without BGP, the old budget holds.
	nobgp := filepath.Join(t.TempDir(), "hbd-nobgp")
	if err := CompileTags(context.Background(), nobgp, "amd64", testVersion, "", time.Now(), BuildTags+",nobgp"); err != nil {
		t.Fatal(err)
	}
	fi, err = os.Stat(nobgp)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hbd built with nobgp: %d bytes", fi.Size())
	if fi.Size() > MaxBinarySizeNoBGP {
		t.Errorf("hbd built with nobgp is %d bytes, over the %d-byte budget", fi.Size(), MaxBinarySizeNoBGP)
	}
}

func TestDebName(t *testing.T) {
	deb := builtDeb(t)
	if got := filepath.Base(deb); got != "hbd_"+testVersion+"_amd64.deb" {
		t.Errorf("package file %s, want hbd_%s_amd64.deb", got, testVersion)
	}
	if _, err := Build(context.Background(), Spec{Version: "v1.0", Arch: "amd64"}); err == nil || !strings.Contains(err.Error(), "starts with a digit") {
		t.Errorf("version v1.0: err = %v, want a version error", err)
	}
}

func TestDebianVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.0":                    "1.2.0",
		"v1.2.0":                   "1.2.0",
		"v1.2.0-3-gabcdef0-dirty":  "1.2.0+3+gabcdef0+dirty",
		"dev":                      "0.0.0~dev",
		"0d8a961-dirty":            "0.0.0~0d8a961+dirty",
		"":                         "0.0.0",
		"0.0.0~git20260101.abcdef": "0.0.0~git20260101.abcdef",
	} {
		if got := DebianVersion(in); got != want || !versionRE.MatchString(got) {
			t.Errorf("DebianVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRefusesDynamicBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "hbd")
	build := exec.Command("go", "build", "-o", bin, "github.com/hbdproject/hbd/cmd/hbd")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("no cgo build here: %v\n%s", err, out) // a machine without a C compiler makes static binaries only
	}
	if err := checkStatic(bin); err == nil {
		t.Skip("the cgo build came out static")
	}
	_, err := Build(context.Background(), Spec{Version: "1.0", Arch: "amd64", Binary: bin, DocsDir: "../../docs", OutDir: dir})
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("Build with a dynamic binary: err = %v, want a refusal naming CGO_ENABLED=0", err)
	}
}

func TestDebInfo(t *testing.T) {
	deb := builtDeb(t)
	info := run(t, "dpkg-deb", "-I", deb)
	for _, want := range []string{
		"Package: hbd\n",
		"Version: " + testVersion + "\n",
		"Architecture: amd64\n",
		"Suggests: redis-server\n",
		"Section: net\n",
		"Depends: " + Depends + "\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	// hbd is one static binary: it needs only what makes its user and
	// directory (sysusers.d, tmpfiles.d), nothing of libc.
	if regexp.MustCompile(`(?m)^ Pre-Depends:`).MatchString(info) {
		t.Errorf("the package has pre-dependencies:\n%s", info)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if !regexp.MustCompile(`\d+ lines\s+\*\s+` + script).MatchString(info) {
			t.Errorf("%s is missing or not executable:\n%s", script, info)
		}
	}
	pkg := run(t, "dpkg-deb", "-f", deb, "Package")
	if strings.TrimSpace(pkg) != "hbd" {
		t.Errorf("dpkg-deb -f Package = %q", pkg)
	}
	dir := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, dir)
	cf, err := os.ReadFile(filepath.Join(dir, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(cf)); strings.Join(got, " ") != "/etc/hbd/hbd.yaml /etc/hbd/webapp.env" {
		t.Errorf("conffiles %q, want /etc/hbd/hbd.yaml /etc/hbd/webapp.env", got)
	}
	// The maintainer scripts are valid sh.
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		run(t, "sh", "-n", filepath.Join(dir, script))
	}
}

func TestDebContents(t *testing.T) {
	deb := builtDeb(t)
	listing := run(t, "dpkg-deb", "-c", deb)
	got := map[string]string{} // path → "mode owner"
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		p := strings.TrimPrefix(f[len(f)-1], ".")
		if strings.HasSuffix(p, "/") && p != "/" {
			p = strings.TrimSuffix(p, "/")
		}
		got[p] = f[0] + " " + f[1]
	}
	want := map[string]string{
		"/usr/bin/hbd":                               "-rwxr-xr-x root/root",
		"/usr/lib/systemd/system/hbd.service":        "-rw-r--r-- root/root",
		"/usr/lib/systemd/system/hbd-webapp.service": "-rw-r--r-- root/root",
		"/usr/lib/sysusers.d/hbd.conf":               "-rw-r--r-- root/root",
		"/usr/lib/tmpfiles.d/hbd.conf":               "-rw-r--r-- root/root",
		"/usr/share/lintian/overrides/hbd":           "-rw-r--r-- root/root",
		"/usr/share/bash-completion/completions/hbd": "-rw-r--r-- root/root",
		"/usr/share/zsh/vendor-completions/_hbd":     "-rw-r--r-- root/root",
		"/usr/share/man/man8/hbd.8.gz":               "-rw-r--r-- root/root",
		"/usr/share/man/man5/hbd.yaml.5.gz":          "-rw-r--r-- root/root",
		"/usr/share/doc/hbd/copyright":               "-rw-r--r-- root/root",
		"/usr/share/doc/hbd/changelog.Debian.gz":     "-rw-r--r-- root/root",
		"/usr/share/doc/hbd/benchmarks.md":           "-rw-r--r-- root/root",
		"/usr/share/doc/hbd/benchmarks/failover.png": "-rw-r--r-- root/root",
		"/etc/hbd":                                       "drwxr-xr-x root/root",
		"/etc/hbd/hbd.yaml":                              "-rw-r--r-- root/root",
		"/etc/hbd/webapp.env":                            "-rw------- root/root",
		"/usr/share/doc/hbd/examples/pc01.yaml":          "-rw-r--r-- root/root",
		"/usr/share/doc/hbd/examples/pc02.yaml":          "-rw-r--r-- root/root",
		"/usr/share/doc/hbd/examples/webapp.env":         "-rw-r--r-- root/root",
		"/usr/share/doc/hbd/examples/50-hbd-hooks.rules": "-rw-r--r-- root/root",
	}
	shipped, err := linkedDocs(os.DirFS("../../docs"), Docs)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range shipped {
		want["/usr/share/doc/hbd/"+d] = "-rw-r--r-- root/root"
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	var extra []string
	for p, mode := range got {
		if _, ok := want[p]; !ok && !strings.HasPrefix(mode, "d") {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("unexpected files in the package: %v", extra)
	}
}

// installRoot makes an empty system root that dpkg --root can install into.
func installRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(r, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dpkg(t *testing.T, root, path string, args ...string) string {
	t.Helper()
	cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--force-not-root", "--force-script-chrootless", "--force-depends", "--log=/dev/null"}, args...)...)
	if path != "" {
		cmd.Env = append(os.Environ(), "PATH="+path)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// idOf returns the numeric id of name in root's etc/passwd or etc/group.
func idOf(t *testing.T, root, file, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) > 3 && f[0] == name {
			return f[2]
		}
	}
	t.Fatalf("no %s in %s/etc/%s:\n%s", name, root, file, b)
	return ""
}

// TestInstallIntoRoot installs the package into a throw-away root with
// dpkg --root and --force-script-chrootless, so the real maintainer scripts
// run (they honour $DPKG_ROOT: systemd-sysusers makes the user and
// systemd-tmpfiles sets the modes, in that root), then purges it. The root
// has no package database to satisfy Depends, hence --force-depends.
func TestInstallIntoRoot(t *testing.T) {
	testenv.RequireRoot(t) // chown and the user database of the root
	testenv.RequireCommand(t, "dpkg", "dpkg")
	testenv.RequireCommand(t, "systemd-sysusers", "systemd")
	deb := builtDeb(t)
	for _, tc := range []struct {
		name string
	}{
		{"sysusers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			root := installRoot(t)
			out := dpkg(t, root, path, "-i", deb)
			if !strings.Contains(out, "hbd keygen --write /etc/hbd/key") {
				t.Errorf("postinst did not explain how to make the key:\n%s", out)
			}
			status := dpkg(t, root, path, "-s", "hbd")
			if !strings.Contains(status, "Status: install ok installed") || !strings.Contains(status, "/etc/hbd/hbd.yaml") {
				t.Errorf("dpkg -s hbd:\n%s", status)
			}
			uid, gid := idOf(t, root, "passwd", "hbd"), idOf(t, root, "group", "hbd")
			if uid == "0" || gid == "0" {
				t.Fatalf("hbd user has uid %s gid %s", uid, gid)
			}
			fi, err := os.Stat(filepath.Join(root, "etc/hbd"))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Perm() != 0o750 || st.Uid != 0 || itoa(st.Gid) != gid {
				t.Errorf("/etc/hbd: mode %v owner %d:%d, want 0750 0:%s", fi.Mode().Perm(), st.Uid, st.Gid, gid)
			}
			for _, f := range []string{"usr/bin/hbd", "etc/hbd/hbd.yaml", "etc/hbd/webapp.env", "usr/lib/systemd/system/hbd.service", "usr/share/doc/hbd/install.md"} {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Errorf("not installed: %v", err)
				}
			}
			// The installed binary runs, and the installed example passes
			// hbd check once there is a key.
			if v := run(t, filepath.Join(root, "usr/bin/hbd"), "version"); !strings.Contains(v, "hbd 1.2.3~test1\n") || !strings.Contains(v, "commit: 0123456789abcdef\n") {
				t.Errorf("the packaged hbd's version:\n%s", v)
			}
			key := run(t, filepath.Join(root, "usr/bin/hbd"), "keygen")
			keyPath := filepath.Join(root, "etc/hbd/key")
			if err := os.WriteFile(keyPath, []byte(key), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, _ := os.ReadFile(filepath.Join(root, "etc/hbd/hbd.yaml"))
			cfgPath := filepath.Join(t.TempDir(), "hbd.yaml")
			os.WriteFile(cfgPath, bytes.Replace(cfg, []byte("/etc/hbd/key"), []byte(keyPath), 1), 0o644)
			run(t, filepath.Join(root, "usr/bin/hbd"), "check", "-q", "-c", cfgPath)

			// Reconfiguring hands the key to hbd.
			dpkg(t, root, path, "-i", deb)
			if fi, err := os.Stat(keyPath); err != nil || itoa(fi.Sys().(*syscall.Stat_t).Uid) != uid || fi.Mode().Perm() != 0o600 {
				t.Errorf("key after reinstall: %v, want owner %s mode 0600", fi, uid)
			}

			dpkg(t, root, path, "--purge", "hbd")
			for _, f := range []string{"usr/bin/hbd", "etc/hbd/hbd.yaml", "etc/hbd/webapp.env", "etc/hbd/key", "etc/hbd"} {
				if _, err := os.Stat(filepath.Join(root, f)); err == nil {
					t.Errorf("%s is left after purge", f)
				}
			}
		})
	}
}

func itoa[T ~uint32](v T) string { return strconv.FormatUint(uint64(v), 10) }

// TestLintian: Debian's own checker finds no error and no warning in the
// package; what is deliberate is overridden inside the package, each
// override with its reason.
func TestLintian(t *testing.T) {
	testenv.RequireCommand(t, "lintian", "lintian")
	deb := builtDeb(t)
	cmd := exec.Command("lintian", "--tag-display-limit", "0", "--fail-on", "none", "--show-overrides", deb)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	t.Logf("lintian:\n%s", out)
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			t.Errorf("lintian: %s", l)
		}
	}
	if !strings.Contains(string(out), "O: hbd: statically-linked-binary") {
		t.Errorf("the static binary's override was not applied:\n%s", out)
	}
	// Every override carries its reason (the comment lintian shows as N:).
	ov, err := debianFiles.ReadFile("debian/lintian-overrides")
	if err != nil {
		t.Fatal(err)
	}
	prevComment := false
	for _, l := range strings.Split(string(ov), "\n") {
		if strings.HasPrefix(l, "hbd: ") && !prevComment {
			t.Errorf("override without a reason: %s", l)
		}
		prevComment = strings.HasPrefix(l, "#")
	}
}

// TestLinkedDocs: the package ships every doc a shipped doc links to, and
// refuses to build when a link points at nothing.
func TestLinkedDocs(t *testing.T) {
	got, err := linkedDocs(os.DirFS("../../docs"), []string{"config.md"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"config.md", "runbooks.md", "benchmarks.md", "benchmarks/failover.png", "how-it-works.md"} {
		if !contains(got, want) {
			t.Errorf("linkedDocs(config.md) lacks %s: %v", want, got)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.md"), []byte("see [b](b.md#x) and [web](https://example.org/c.md)\n"), 0o644)
	if _, err := linkedDocs(os.DirFS(dir), []string{"a.md"}); err == nil || !strings.Contains(err.Error(), "b.md") {
		t.Errorf("a dangling link: err = %v, want one naming b.md", err)
	}
}

// TestManPages: the pages render without groff warnings and say what
// their docs say.
func TestManPages(t *testing.T) {
	testenv.RequireCommand(t, "man", "man-db")
	deb := builtDeb(t)
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, dir)
	for page, want := range map[string]string{
		"usr/share/man/man8/hbd.8.gz":      "import-keepalived",
		"usr/share/man/man5/hbd.yaml.5.gz": "auth_key_file",
	} {
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", filepath.Join(dir, page))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_DISABLE_SECCOMP=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("man %s: %v\n%s", page, err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("man %s: warnings:\n%s", page, stderr.String())
		}
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("man %s lacks %q", page, want)
		}
	}
}
