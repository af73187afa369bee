package testenv

import (
	"fmt"
	"testing"
)

// outcomeTB records whether a check failed or skipped.
type outcomeTB struct {
	testing.TB
	outcome string
}

func (o *outcomeTB) Helper()                      {}
func (o *outcomeTB) Fatalf(f string, args ...any) { o.outcome = "fail: " + fmt.Sprintf(f, args...) }
func (o *outcomeTB) Skipf(f string, args ...any)  { o.outcome = "skip: " + fmt.Sprintf(f, args...) }

// A missing prerequisite fails unless the developer asks to skip, and CI
// never skips.
func TestMissingPrerequisiteFailsByDefault(t *testing.T) {
	for _, tt := range []struct {
		skip, ci, want string
	}{
		{"", "", "fail"},
		{"1", "", "skip"},
		{"0", "", "fail"},
		{"1", "true", "fail"},
		{"", "true", "fail"},
	} {
		t.Setenv(SkipVar, tt.skip)
		t.Setenv("CI", tt.ci)
		o := &outcomeTB{TB: t}
		RequireCommand(o, "hbd-no-such-command", "nothing")
		if len(o.outcome) < 4 || o.outcome[:4] != tt.want {
			t.Errorf("%s=%q CI=%q: %q, want %s", SkipVar, tt.skip, tt.ci, o.outcome, tt.want)
		}
	}
}
