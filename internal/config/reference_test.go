package config

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestReferenceDoc checks docs/config.md against the structs: every YAML
// field of Config, Track, Notify, Drain and Witness has a row in its section's
// table, and every row names a field that exists.
func TestReferenceDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]reflect.Type{
		"Top level":      reflect.TypeOf(Config{}),
		"tracks":         reflect.TypeOf(Track{}),
		"notify":         reflect.TypeOf(Notify{}),
		"drain":          reflect.TypeOf(Drain{}),
		"witness":        reflect.TypeOf(Witness{}),
		"groups":         reflect.TypeOf(Group{}),
		"bgp":            reflect.TypeOf(BGP{}),
		"bgp.vips":       reflect.TypeOf(BGPVIP{}),
		"bgp.neighbours": reflect.TypeOf(Neighbour{}),
	}
	documented := map[string][]string{}
	row := regexp.MustCompile("^\\| `([a-z_0-9]+)` \\|")
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			section = strings.TrimSpace(h)
			continue
		}
		if _, ok := sections[section]; !ok {
			continue
		}
		if m := row.FindStringSubmatch(l); m != nil {
			documented[section] = append(documented[section], m[1])
		}
	}
	for section, typ := range sections {
		var fields []string
		for i := 0; i < typ.NumField(); i++ {
			if tag := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields = append(fields, tag)
			}
		}
		doc := documented[section]
		if len(doc) == 0 {
			t.Errorf("docs/config.md has no table of fields under \"## %s\"", section)
			continue
		}
		seen := map[string]bool{}
		for _, d := range doc {
			if seen[d] {
				t.Errorf("docs/config.md, section %q: %s is documented twice", section, d)
			}
			seen[d] = true
		}
		for _, f := range fields {
			if !seen[f] {
				t.Errorf("docs/config.md, section %q: field %s (%s) is not documented", section, f, typ.Name())
			}
			delete(seen, f)
		}
		var stale []string
		for d := range seen {
			stale = append(stale, d)
		}
		sort.Strings(stale)
		for _, d := range stale {
			t.Errorf("docs/config.md, section %q: documents %s, which %s does not have", section, d, typ.Name())
		}
	}
}
