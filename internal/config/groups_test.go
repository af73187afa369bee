package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// goodGroups is the active-active layout of examples/active-active.yaml,
// as pc01 reads it.
const goodGroups = `node: pc01
interface: eth0
listen: 198.51.100.11
peers: [198.51.100.12]
auth_key_file: key
preempt_delay: 100ms
tracks:
  - {name: app, type: http, url: "http://127.0.0.1:8080/healthz", fault: true}
  - {name: redis, type: http, url: "http://127.0.0.1:8080/readyz", weight: 60}
groups:
  - name: web1
    id: 1
    vips: [198.51.100.10/24]
    priorities: {pc01: 150, pc02: 100}
  - name: web2
    id: 2
    vips: [198.51.100.20/24, "2001:db8::20/64"]
    priorities: {pc01: 100, pc02: 150}
    preempt: false
    tracks: [app]
`

func TestGroupsResolve(t *testing.T) {
	res, err := parse(t, goodGroups, opts())
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	c := res.Config
	es := c.Elections()
	if len(es) != 2 {
		t.Fatalf("%d elections, want 2", len(es))
	}
	w1, w2 := es[0], es[1]
	if w1.Name != "web1" || w1.ID != 1 || w1.Priority != 150 || !w1.Preempt || w1.PreemptDelay != 100*time.Millisecond || len(w1.Tracks) != 2 {
		t.Errorf("web1 = %+v", w1)
	}
	if w2.Name != "web2" || w2.ID != 2 || w2.Priority != 100 || w2.Preempt || len(w2.Tracks) != 1 || w2.Tracks[0].Name != "app" {
		t.Errorf("web2 = %+v", w2)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24"), netip.MustParsePrefix("198.51.100.20/24"), netip.MustParsePrefix("2001:db8::20/64")}
	if got := c.L2VIPs(); !slices.Equal(got, want) {
		t.Errorf("L2VIPs = %v, want %v", got, want)
	}
	// pc02 reads the same file with its own name.
	res, err = parse(t, strings.Replace(goodGroups, "node: pc01", "node: pc02", 1), opts())
	if err != nil {
		t.Fatal(err)
	}
	if es := res.Config.Elections(); es[0].Priority != 100 || es[1].Priority != 150 {
		t.Errorf("pc02's priorities: web1 %d, web2 %d; want 100, 150", es[0].Priority, es[1].Priority)
	}
	// A node the map does not name gets the group's, then the top-level priority.
	res, err = parse(t, strings.Replace(goodGroups, "node: pc01", "node: pc03\npriority: 42", 1), opts())
	if err != nil {
		t.Fatal(err)
	}
	if es := res.Config.Elections(); es[0].Priority != 42 {
		t.Errorf("pc03's web1 priority %d, want the top-level 42", es[0].Priority)
	}
}

func TestNoGroupsIsOneElection(t *testing.T) {
	res, err := parse(t, good, opts())
	if err != nil {
		t.Fatal(err)
	}
	es := res.Config.Elections()
	if len(es) != 1 || es[0].Name != "" || es[0].ID != 0 || es[0].Priority != 150 || len(es[0].VIPs) != 2 {
		t.Fatalf("elections = %+v", es)
	}
}

func TestGroupErrorsNameLineAndField(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"vips beside groups", strings.Replace(goodGroups, "interface: eth0\n", "interface: eth0\nvips: [198.51.100.30/24]\n", 1), 3, "vips", "belongs to a group"},
		{"duplicate id", strings.Replace(goodGroups, "id: 2", "id: 1", 1), 16, "groups[1].id", "used twice"},
		{"missing id", strings.Replace(goodGroups, "    id: 2\n", "", 1), 15, "groups[1].id", "required"},
		{"id range", strings.Replace(goodGroups, "id: 2", "id: 256", 1), 16, "groups[1].id", "out of range"},
		{"bad name", strings.Replace(goodGroups, "name: web2", "name: web 2", 1), 15, "groups[1].name", "letters, digits"},
		{"duplicate name", strings.Replace(goodGroups, "name: web2", "name: web1", 1), 15, "groups[1].name", "used twice"},
		{"vip in two groups", strings.Replace(goodGroups, "198.51.100.20/24", "198.51.100.10/24", 1), 17, "groups[1].vips[0]", "also groups[0].vips[0]"},
		{"no vips", strings.Replace(goodGroups, "    vips: [198.51.100.10/24]\n", "", 1), 11, "groups[0].vips", "at least one"},
		{"unknown track", strings.Replace(goodGroups, "tracks: [app]", "tracks: [ap]", 1), 20, "groups[1].tracks[0]", `"ap" is not the name of a track`},
		{"priority range", strings.Replace(goodGroups, "pc02: 150}", "pc02: 300}", 1), 18, "groups[1].priorities.pc02", "out of range"},
		{"typo in a group", strings.Replace(goodGroups, "preempt: false", "prempt: false", 1), 19, "groups[1].prempt", `did you mean "preempt"`},
		{"with a witness", goodGroups + "witness:\n  redis: redis://198.51.100.20:6379/0\n", 10, "groups", "witness and groups"},
		{"listen is a group VIP", strings.Replace(goodGroups, "listen: 198.51.100.11", "listen: 198.51.100.10", 1), 3, "listen", "is a VIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantFieldError(t, tt.src, tt.line, tt.field, tt.msg) })
	}
}
