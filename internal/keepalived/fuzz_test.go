package keepalived

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzImport feeds arbitrary text to the keepalived importer: it must never
// panic, and must either produce YAML that passes hbd check or list the
// problems.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"basic.conf", "fractional.conf", "scripts.conf", "active-active-pc01.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("vrrp_instance VI_1 {\n  state MASTER\n  virtual_ipaddress {\n    198.51.100.10/24\n  }\n"))
	f.Add([]byte("global_defs { } }"))
	f.Add([]byte("include /etc/keepalived/*.conf\n"))
	// Includes read a file system of their own, not the host's.
	files := fstest.MapFS{
		"etc/keepalived/scripts.conf": {Data: []byte("vrrp_script chk {\n    script /usr/bin/true\n}\n")},
		"etc/keepalived/loop.conf":    {Data: []byte("include loop.conf\n")},
	}
	f.Add([]byte("include /etc/keepalived/scripts.conf\n" + string(must(os.ReadFile("testdata/active-active-pc01.conf")))))
	f.Fuzz(func(t *testing.T, src []byte) {
		res, err := Import(src, Options{File: "/etc/keepalived/keepalived.conf", Node: "pc01", Listen: "198.51.100.11", FS: files})
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %v is not a list of problems", err)
			}
			return
		}
		if res == nil || len(res.YAML) == 0 {
			t.Fatalf("no error and no YAML: %+v", res)
		}
		parseImported(t, res.YAML)
	})
}
