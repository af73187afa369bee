package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary YAML to the config loader: it must never
// panic, must return either a config or errors, and every error must name
// a field or a line. (With errors, Parse may still return what it made
// of the file.)
func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(goodKey+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"pc01.yaml", "pc02.yaml"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "systemd", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("node: pc01\npriority: 150\ninterface: eth0\nvips: [198.51.100.10/24]\nlisten: 198.51.100.11\npeers: [198.51.100.12]\nauth_key_file: key\n"))
	f.Add([]byte("prioity: 1\nvips: [198.51.100.300/24]\n"))
	f.Add([]byte("tracks:\n  - name: x\n    type: exec\n    command: [/bin/true]\n    weight: -20\n"))
	f.Add([]byte("witness: {redis: redis://198.51.100.20:6379/0, ttl: 1ms}\n"))
	f.Add([]byte("interface: eth0\nlisten: 198.51.100.11\npeers: [198.51.100.12]\nauth_key_file: key\nbgp:\n  local_as: 65001\n  vips: [{address: 198.51.100.200/32, communities: [\"65001:100\", no-export]}]\n  neighbours: [{address: 198.51.100.30, as: 65000, hold_time: 3s}]\n  med: 7\n"))
	f.Add([]byte("{"))
	opts := Options{InterfaceExists: func(string) bool { return true },
		Hostname: func() (string, error) { return "pc01", nil }}
	path := filepath.Join(dir, "hbd.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(data, path, opts)
		if res == nil && err == nil {
			t.Fatal("Parse returned neither a result nor an error")
		}
		if err == nil {
			if res.Config == nil || len(res.Key) < MinKeyLen {
				t.Fatalf("accepted without a config or key: %+v", res)
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %v is not a list of field errors", err)
		}
		for _, e := range es {
			if e.Field == "" && e.Line == 0 {
				t.Fatalf("error names no field and no line: %v", e)
			}
		}
	})
}
