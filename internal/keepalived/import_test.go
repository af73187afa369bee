package keepalived

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden imports every testdata/*.conf and compares the YAML with
// NAME.yaml and the warnings with NAME.warnings; each result must also be
// a valid hbd config.
func TestGolden(t *testing.T) {
	confs, err := filepath.Glob("testdata/*.conf")
	if err != nil || len(confs) == 0 {
		t.Fatalf("no testdata/*.conf: %v", err)
	}
	for _, conf := range confs {
		base := strings.TrimSuffix(conf, ".conf")
		t.Run(filepath.Base(base), func(t *testing.T) {
			src, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			node := ""
			switch {
			case strings.HasSuffix(base, "basic"), strings.HasSuffix(base, "-pc01"):
				node = "pc01"
			case strings.HasSuffix(base, "-pc02"):
				node = "pc02"
			}
			// Bare program names resolve the same on every test machine.
			res, err := Import(src, Options{File: conf, Node: node, LookPath: func(n string) (string, error) { return "/usr/bin/" + n, nil }})
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			var warns bytes.Buffer
			for _, w := range res.Warnings {
				warns.WriteString(w.String() + "\n")
			}
			golden(t, base+".yaml", res.YAML)
			golden(t, base+".warnings", warns.Bytes())

			// The output is a valid hbd config.
			c := parseImported(t, res.YAML)
			if len(c.Tracks) == 0 && bytes.Contains(src, []byte("track_")) {
				t.Error("tracks were lost")
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./keepalived -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./keepalived -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

const good = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    unicast_src_ip 198.51.100.11
    unicast_peer {
        198.51.100.12
    }
    virtual_ipaddress {
        198.51.100.10/24
    }
%s
}
%s
`

// TestErrors checks that what cannot be mapped gives an error naming the
// line and the keyword.
func TestErrors(t *testing.T) {
	inInstance := func(s string) string { return strings.Replace(strings.Replace(good, "%s", s, 1), "%s", "", 1) }
	atTop := func(s string) string { return strings.Replace(strings.Replace(good, "%s", "", 1), "%s", s, 1) }
	tracked := func(s string) string {
		return strings.Replace(strings.Replace(good, "%s", "    track_script {\n        s\n    }", 1), "%s", s, 1)
	}
	for _, tc := range []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"sync group", atTop("vrrp_sync_group G {\n group {\n VI_1\n }\n}"), []string{":14: vrrp_sync_group: not supported: the instances of a sync group move together, and hbd's groups each move on their own; merge the synchronised instances into one vrrp_instance"}},
		{"lvs", atTop("virtual_server 198.51.100.10 80 {\n delay_loop 6\n}"), []string{":14: virtual_server: LVS load balancing"}},
		{"include", atTop("include /nonexistent/hbd/other.conf"), []string{":14: include: /nonexistent/hbd/other.conf: no such file"}},
		{"conditional", inInstance("@high    priority 200"), []string{":12: @high: conditional line: pass --config-id ID"}},
		{"multicast", strings.Replace(strings.Replace(good, "    unicast_peer {\n        198.51.100.12\n    }\n", "", 1), "%s", "", 2),
			[]string{":1: vrrp_instance: no unicast_peer block: this instance uses multicast VRRP"}},
		{"multicast src", strings.Replace(strings.Replace(strings.Replace(good, "    unicast_peer {\n        198.51.100.12\n    }\n", "", 1), "%s", "    mcast_src_ip 198.51.100.11", 1), "%s", "", 1),
			[]string{":9: mcast_src_ip: multicast VRRP"}},
		{"shell pipe", tracked("vrrp_script s {\n script \"/usr/bin/pgrep nginx | /usr/bin/wc -l\"\n}") + "", []string{":17: script: command \"/usr/bin/pgrep nginx | /usr/bin/wc -l\" needs a shell (\"|\")"}},
		{"shell redirect", tracked("vrrp_script s {\n script \"</dev/tcp/127.0.0.1/80\"\n}"), []string{":17: script: command \"</dev/tcp/127.0.0.1/80\" needs a shell"}},
		{"shell variable", inInstance(`    notify_master "/usr/bin/logger $HOSTNAME"`), []string{":12: notify_master: command \"/usr/bin/logger $HOSTNAME\" needs a shell (\"$\")"}},
		{"relative program", inInstance(`    notify_master "./reload.sh nginx"`), []string{":12: notify_master: the program \"./reload.sh\" is a relative path"}},
		{"program not on PATH", inInstance(`    notify_master "hbd-no-such-program -HUP"`), []string{":12: notify_master: the program \"hbd-no-such-program\" is not on this host's PATH"}},
		{"unknown script", inInstance("    track_script {\n        chk_missing\n    }"), []string{":13: chk_missing: no vrrp_script \"chk_missing\" is defined"}},
		{"vip on another dev", inInstance("    virtual_ipaddress {\n        198.51.100.11/24 dev eth1\n    }"), []string{":13: 198.51.100.11/24: dev eth1: hbd holds every VIP on the one interface (eth0)"}},
		{"bad vip", inInstance("    virtual_ipaddress {\n        198.51.100.300\n    }"), []string{":13: 198.51.100.300: not an address"}},
		{"routes", inInstance("    virtual_routes {\n        default via 198.51.100.1\n    }"), []string{":12: virtual_routes: hbd does not move routes"}},
		{"vmac", inInstance("    use_vmac"), []string{":12: use_vmac: virtual MAC addresses are not supported"}},
		{"unknown keyword", inInstance("    frobnicate 3"), []string{":12: frobnicate: unknown vrrp_instance keyword"}},
		{"reverse weight", inInstance("    track_interface {\n        eth1 weight 10 reverse\n    }"), []string{":13: weight: `reverse` is not supported"}},
		{"no src", strings.Replace(inInstance(""), "    unicast_src_ip 198.51.100.11\n", "", 1), []string{":1: vrrp_instance: no unicast_src_ip"}},
		{"no vrid", strings.Replace(inInstance(""), "    virtual_router_id 51\n", "", 1), []string{"no virtual_router_id"}},
		{"bad priority", strings.Replace(inInstance(""), "priority 150", "priority 300", 1), []string{":4: priority: \"300\" is not a number from 1 to 255"}},
		{"bad advert", strings.Replace(inInstance(""), "priority 150", "advert_int fast", 1), []string{":4: advert_int: \"fast\" is not a number of seconds"}},
		{"advert_int too long", strings.Replace(inInstance(""), "priority 150", "advert_int 12", 1), []string{":4: advert_int: 12s: hbd's heartbeat interval is 5ms to 10s"}},
		{"advert_int too short", strings.Replace(inInstance(""), "priority 150", "advert_int 0.001", 1), []string{":4: advert_int: 1ms: hbd's heartbeat interval is 5ms to 10s"}},
		{"script interval", tracked("vrrp_script s {\n script /usr/bin/true\n interval 0.005\n}"), []string{":18: interval: 5ms: hbd runs a check at most every 10ms"}},
		{"link-local VIP", inInstance("    virtual_ipaddress {\n        fe80::10/64\n    }"), []string{":13: fe80::10/64: fe80::10 cannot be a VIP in hbd (loopback, multicast, unspecified, link-local or IPv4-mapped)"}},
		{"unspecified VIP", inInstance("    virtual_ipaddress {\n        ::\n    }"), []string{":13: ::: :: cannot be a VIP in hbd"}},
		{"mapped VIP", inInstance("    virtual_ipaddress {\n        ::ffff:198.51.100.20\n    }"), []string{":13: ::ffff:198.51.100.20: ::ffff:198.51.100.20 cannot be a VIP in hbd"}},
		{"unspecified peer", strings.Replace(inInstance(""), "        198.51.100.12\n", "        ::\n", 1), []string{":7: ::: :: cannot be a peer (unspecified or multicast)"}},
		{"multicast peer", strings.Replace(inInstance(""), "        198.51.100.12\n", "        224.0.0.18\n", 1), []string{":7: 224.0.0.18: 224.0.0.18 cannot be a peer"}},
		{"peer is this host", strings.Replace(inInstance(""), "        198.51.100.12\n", "        198.51.100.11\n", 1), []string{":7: 198.51.100.11: 198.51.100.11 is this host's own address (unicast_src_ip or --listen): a peer must be another host"}},
		{"peer is a VIP", strings.Replace(inInstance(""), "        198.51.100.12\n", "        198.51.100.10\n", 1), []string{":7: 198.51.100.10: 198.51.100.10 is a VIP: list the other nodes' own addresses"}},
		{"src is a VIP", strings.Replace(inInstance(""), "unicast_src_ip 198.51.100.11", "unicast_src_ip 198.51.100.10", 1), []string{":5: unicast_src_ip: this host's address 198.51.100.10 is a VIP"}},
		{"src with a zone", strings.Replace(inInstance(""), "unicast_src_ip 198.51.100.11", "unicast_src_ip fe80::1%eth0", 1), []string{":5: unicast_src_ip: \"fe80::1%eth0\" is not an IP address"}},
		{"unclosed", "vrrp_instance X {\n interface eth0\n", []string{":1: vrrp_instance: block is never closed"}},
		{"stray brace", "}\n", []string{":1: }: closes a block that was never opened"}},
		{"quote", "vrrp_instance X {\n notify \"/bin/x\n}\n", []string{":2: notify: unterminated double quote"}},
		{"empty", "! nothing here\n", []string{"no vrrp_instance block"}},
		{"several at once", atTop("vrrp_sync_group G {\n}\nvirtual_server 198.51.100.10 80 {\n}"), []string{":14: vrrp_sync_group", ":16: virtual_server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblems(t, tc.src, Options{File: "keepalived.conf"}, tc.want)
		})
	}
}

// wantProblems imports src and checks that it fails with Problems whose
// text contains each of want.
func wantProblems(t *testing.T, src string, opts Options, want []string) {
	t.Helper()
	_, err := Import([]byte(src), opts)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want Problems\n%s", err, src)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\ndoes not contain %q\ninput:\n%s", err, w, src)
		}
	}
}

func TestWarnings(t *testing.T) {
	src := strings.Replace(strings.Replace(good, "%s", "    garp_master_delay 1\n    smtp_alert\n    dont_track_primary", 1), "%s", "static_routes {\n}\n", 1)
	res, err := Import([]byte(src), Options{File: "k.conf"})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, w := range res.Warnings {
		all = append(all, w.String())
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{
		"k.conf:12: warning: garp_master_delay: ignored",
		"k.conf:13: warning: smtp_alert: ignored",
		"k.conf:14: warning: dont_track_primary: ignored",
		"k.conf:16: warning: static_routes: ignored",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings\n%s\ndo not contain %q", got, want)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
		err  string
	}{
		{`"/usr/bin/killall -0 haproxy"`, []string{"/usr/bin/killall", "-0", "haproxy"}, ""},
		{`/usr/bin/x 'two words' "and more"`, []string{"/usr/bin/x", "two words", "and more"}, ""},
		{`"/usr/bin/x 'a|b' c"`, []string{"/usr/bin/x", "a|b", "c"}, ""},
		{`"/usr/bin/a && /usr/bin/b"`, nil, "needs a shell"},
		{`"/usr/bin/a > /tmp/x"`, nil, "needs a shell"},
		{`"/usr/bin/a *.log"`, nil, "needs a shell"},
		{"\"/usr/bin/a `id`\"", nil, "needs a shell"},
		{`"FOO=1 /usr/bin/a"`, nil, "variable assignment"},
		{`"/usr/bin/a 'open"`, nil, "unterminated ' quote"},
	} {
		stmts, probs := parse("x", []byte("script "+tc.raw+"\n"), "")
		if len(probs) > 0 {
			t.Fatalf("%s: %v", tc.raw, probs)
		}
		got, err := splitCommand(stmts[0])
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("splitCommand(%s) = %q, %v; want error %q", tc.raw, got, err, tc.err)
		case tc.err == "" && (err != nil || strings.Join(got, "\x00") != strings.Join(tc.want, "\x00")):
			t.Errorf("splitCommand(%s) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
}

func TestDeadAfter(t *testing.T) {
	for _, tc := range []struct {
		advert time.Duration
		prio   int
		want   time.Duration
	}{
		{time.Second, 255, 3004 * time.Millisecond}, // 3 + 1/256 s = 3.0039s, rounded
		{time.Second, 100, 3609 * time.Millisecond},
		{time.Second, 1, 3996 * time.Millisecond},
		{100 * time.Millisecond, 150, 341 * time.Millisecond},
	} {
		if got := deadAfter(tc.advert, tc.prio); got != tc.want {
			t.Errorf("deadAfter(%v, %d) = %v, want %v", tc.advert, tc.prio, got, tc.want)
		}
		if got := deadAfter(tc.advert, tc.prio); got < 2*tc.advert {
			t.Errorf("deadAfter(%v, %d) = %v < 2 × interval", tc.advert, tc.prio, got)
		}
	}
}

// TestDocExample keeps the worked examples in docs/keepalived.md true
// (one instance, and two as groups): each keepalived.conf, imported, gives
// exactly the YAML and messages shown, and passes hbd check.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/keepalived.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	block := func(after, fence string) string {
		t.Helper()
		i := strings.Index(doc, after)
		if i < 0 {
			t.Fatalf("docs/keepalived.md has no %q", after)
		}
		j := strings.Index(doc[i:], fence+"\n")
		if j < 0 {
			t.Fatalf("docs/keepalived.md: no %s block after %q", fence, after)
		}
		start := i + j + len(fence) + 1
		end := strings.Index(doc[start:], "```")
		return doc[start : start+end]
	}
	for _, ex := range []struct{ conf, result string }{
		{"Example: this keepalived.conf", "becomes, with these notes and warnings"},
		{"Example with two instances", "becomes, with these notes on standard error"},
	} {
		conf := block(ex.conf, "```")
		msgs := block(ex.result, "```text")
		yml := block(ex.result, "```yaml")
		res, err := Import([]byte(conf), Options{File: "-", Node: "pc01"})
		if err != nil {
			t.Fatalf("%s: %v", ex.conf, err)
		}
		if string(res.YAML) != yml {
			t.Errorf("docs/keepalived.md shows\n%s\nbut the import gives\n%s", yml, res.YAML)
		}
		var got strings.Builder
		for _, w := range res.Warnings {
			got.WriteString(w.String() + "\n")
		}
		if got.String() != msgs {
			t.Errorf("docs/keepalived.md shows messages\n%s\nbut the import gives\n%s", msgs, got.String())
		}
		parseImported(t, res.YAML)
	}
}

// TestImportOnRealShapes covers what the importer met on real configs:
// duplicate VIPs, bare program names, includes, conditional lines, and no
// error that only follows from another.
func TestImportOnRealShapes(t *testing.T) {
	lookPath := func(name string) (string, error) {
		if name == "pidof" {
			return "/usr/bin/pidof", nil
		}
		return "", errors.New("not found")
	}
	t.Run("duplicate VIP", func(t *testing.T) {
		src := strings.Replace(strings.Replace(good, "%s", "    virtual_ipaddress {\n        198.51.100.10\n        198.51.100.20/32\n        198.51.100.20 label eth0:1\n    }", 1), "%s", "", 1)
		src = strings.Replace(src, "    virtual_ipaddress {\n        198.51.100.10/24\n    }\n", "", 1)
		res, err := Import([]byte(src), Options{File: "k.conf"})
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		if n := bytes.Count(res.YAML, []byte("198.51.100.20/32")); n != 1 {
			t.Errorf("198.51.100.20 written %d times:\n%s", n, res.YAML)
		}
		if !hasWarning(res, "198.51.100.20 is listed again (first on line") {
			t.Errorf("no warning about the duplicate: %v", res.Warnings)
		}
		checkValid(t, res.YAML)
	})
	t.Run("bare program on PATH", func(t *testing.T) {
		src := strings.Replace(strings.Replace(good, "%s", "    track_script {\n        chk_haproxy\n    }", 1), "%s", "vrrp_script chk_haproxy {\n    script \"pidof haproxy\"\n    interval 2\n}", 1)
		res, err := Import([]byte(src), Options{File: "k.conf", LookPath: lookPath})
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		if !bytes.Contains(res.YAML, []byte(`command: ["/usr/bin/pidof", "haproxy"]  # split without a shell; pidof: found at /usr/bin/pidof on the importing host's PATH`)) {
			t.Errorf("pidof not resolved with a comment:\n%s", res.YAML)
		}
		checkValid(t, res.YAML)
	})
	t.Run("bad script line: one error, no cascade", func(t *testing.T) {
		src := strings.Replace(strings.Replace(good, "%s", "    track_script {\n        chk\n    }", 1), "%s", "vrrp_script chk {\n    script \"nosuch-check\"\n}", 1)
		_, err := Import([]byte(src), Options{File: "k.conf", LookPath: lookPath})
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(ps[0].Error(), "not on this host's PATH") {
			t.Errorf("want exactly one error about the program, got %v", err)
		}
	})
	t.Run("include", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "conf.d"), 0o755)
		main := strings.Replace(strings.Replace(good, "%s", "    track_script {\n        chk_a\n    }", 1), "%s", "include conf.d/*.conf", 1)
		os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(main), 0o644)
		os.WriteFile(filepath.Join(dir, "conf.d", "a.conf"), []byte("# scripts\nvrrp_script chk_a {\n    script \"/usr/bin/true\"\n}\n"), 0o644)
		src, _ := os.ReadFile(filepath.Join(dir, "keepalived.conf"))
		res, err := Import(src, Options{File: filepath.Join(dir, "keepalived.conf")})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(res.YAML, []byte("# vrrp_script chk_a (a.conf line 2), track_script (line 13)")) {
			t.Errorf("the included script is not imported with its file and line:\n%s", res.YAML)
		}
		checkValid(t, res.YAML)
		// An error in an included file names that file and its line.
		os.WriteFile(filepath.Join(dir, "conf.d", "a.conf"), []byte("vrrp_script chk_a {\n    script \"/usr/bin/true\"\n    bogus 1\n}\n"), 0o644)
		_, err = Import(src, Options{File: filepath.Join(dir, "keepalived.conf")})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "conf.d", "a.conf")+":3: bogus: unknown vrrp_script keyword") {
			t.Errorf("error in the included file: %v", err)
		}
		// A file that includes itself is stopped.
		os.WriteFile(filepath.Join(dir, "conf.d", "a.conf"), []byte("include a.conf\n"), 0o644)
		_, err = Import(src, Options{File: filepath.Join(dir, "keepalived.conf")})
		if err == nil || !strings.Contains(err.Error(), "nested more than") {
			t.Errorf("include loop: %v", err)
		}
	})
	t.Run("conditional lines", func(t *testing.T) {
		src := strings.Replace(strings.Replace(good, "priority 150", "@high priority 150\n@low priority 50\n@^high nopreempt", 1), "%s", "", 2)
		for id, want := range map[string]string{"high": "priority: 150", "low": "priority: 50"} {
			res, err := Import([]byte(src), Options{File: "k.conf", ConfigID: id})
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if !bytes.Contains(res.YAML, []byte(want)) || bytes.Contains(res.YAML, []byte("preempt: false")) != (id == "low") {
				t.Errorf("--config-id %s:\n%s", id, res.YAML)
			}
		}
	})
}

func hasWarning(res *Result, s string) bool {
	for _, w := range res.Warnings {
		if strings.Contains(w.String(), s) {
			return true
		}
	}
	return false
}

// checkValid: an imported config passes what hbd check checks (the key
// moved to a temp file, the interface allowed to be missing).
func checkValid(t *testing.T, y []byte) {
	t.Helper()
	parseImported(t, y)
}

// TestSamples runs the importer on keepalived's own samples (the
// keepalived.conf files of its doc/samples, vendored in testdata/samples
// with their licence): each either imports to a config
// that passes hbd check, or fails naming the file, the line and the
// reason of every problem. testdata/samples.golden records what the
// importer says about each (go test -update rewrites it).
func TestSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/samples/keepalived.conf.*")
	if err != nil || len(files) < 25 {
		t.Fatalf("testdata/samples: %d files, %v", len(files), err)
	}
	var report bytes.Buffer
	run := func(file string, opts Options) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		opts.File = file
		opts.LookPath = func(n string) (string, error) { return "/usr/bin/" + n, nil }
		res, err := Import(src, opts)
		name := filepath.Base(file)
		if opts.ConfigID != "" {
			name += " --config-id " + opts.ConfigID
		}
		var ps Problems
		switch {
		case errors.As(err, &ps):
			fmt.Fprintf(&report, "%s: exit 1\n", name)
			for _, p := range ps {
				if p.File == "" || p.Msg == "" || (p.Line == 0 && !strings.Contains(p.Msg, "no vrrp_instance")) {
					t.Errorf("%s: a problem without its file, line or reason: %q", name, p)
				}
				fmt.Fprintf(&report, "  %s\n", strings.TrimPrefix(p.Error(), "testdata/samples/"))
			}
		case err != nil:
			t.Errorf("%s: %v", name, err)
		default:
			fmt.Fprintf(&report, "%s: imported\n", name)
			checkValid(t, res.YAML)
		}
	}
	for _, f := range files {
		run(f, Options{})
		if bytes.Contains(must(os.ReadFile(f)), []byte("\n@")) {
			run(f, Options{ConfigID: "high"})
		}
	}
	golden(t, "testdata/samples.golden", report.Bytes())
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestIncludeBounds: include follows only regular files of a sane size,
// and not a glob that matches half the file system.
func TestIncludeBounds(t *testing.T) {
	files := fstest.MapFS{
		"etc/keepalived/conf.d":   {Mode: fs.ModeDir | 0o755},
		"etc/keepalived/fifo":     {Mode: fs.ModeNamedPipe | 0o644},
		"etc/keepalived/big.conf": {Data: bytes.Repeat([]byte("# padding\n"), maxIncludeSize/10+1)},
	}
	for i := range maxIncludeFiles + 1 {
		files[fmt.Sprintf("etc/many/%03d.conf", i)] = &fstest.MapFile{Data: []byte("! empty\n")}
	}
	for _, tc := range []struct{ include, want string }{
		{"conf.d", ":14: include: /etc/keepalived/conf.d is not a keepalived configuration (not a regular file of at most 1048576 bytes)"},
		{"fifo", ":14: include: /etc/keepalived/fifo is not a keepalived configuration"},
		{"big.conf", ":14: include: /etc/keepalived/big.conf is not a keepalived configuration"},
		{"/etc/many/*.conf", ":14: include: /etc/many/*.conf matches 101 files; at most 100 are followed"},
	} {
		src := strings.Replace(strings.Replace(good, "%s", "", 1), "%s", "include "+tc.include, 1)
		wantProblems(t, src, Options{File: "/etc/keepalived/keepalived.conf", FS: files}, []string{tc.want})
	}
}

// TestStr: every scalar str writes reads back as the same string.
func TestStr(t *testing.T) {
	for _, s := range []string{"eth0", "::", "::1", "0::", "a::", "2001:db8::", "2001:db8::11", "198.51.100.11", "yes", "a,b", "x:", "0000", "#x", "a b", "-", "é"} {
		var v struct {
			V string `yaml:"v"`
		}
		if err := yaml.Unmarshal([]byte("v: "+str(s)+"\n"), &v); err != nil || v.V != s {
			t.Errorf("str(%q) = %s reads back as %q, %v", s, str(s), v.V, err)
		}
	}
}
