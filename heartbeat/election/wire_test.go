package election

import "testing"

// TestWireNumbers pins the numbers of the enums that travel in frames:
// package heartbeat encodes these very types, so renumbering one breaks
// every peer running an older build.
func TestWireNumbers(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want uint8
	}{
		{"Init", uint8(Init), 0},
		{"Backup", uint8(Backup), 1},
		{"Master", uint8(Master), 2},
		{"Fault", uint8(Fault), 3},
		{"Maintenance", uint8(Maintenance), 4},
		{"Heartbeat", uint8(Heartbeat), 1},
		{"Bye", uint8(Bye), 2},
		{"Released", uint8(Released), 3},
		{"FlagReady", uint8(FlagReady), 1},
		{"FlagMaintenance", uint8(FlagMaintenance), 2},
		{"FlagWantMaster", uint8(FlagWantMaster), 4},
		{"FlagDegraded", uint8(FlagDegraded), 8},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %d on the wire, want %d", tt.name, tt.got, tt.want)
		}
	}
	if Kind(0).Valid() || Kind(4).Valid() || !Released.Valid() {
		t.Error("Kind.Valid accepts an unknown kind or refuses a known one")
	}
}
