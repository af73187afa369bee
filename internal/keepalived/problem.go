package keepalived

import (
	"fmt"
	"strings"
)

// Problem is one thing in a keepalived.conf the importer refuses (an error)
// or maps only partly (a warning or a note), with the line and keyword it
// is about.
type Problem struct {
	File    string
	Line    int
	Keyword string
	Level   string // "" for an error, else "warning" or "note"
	Msg     string
}

func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:", p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Level != "" {
		b.WriteString(p.Level + ": ")
	}
	if p.Keyword != "" {
		b.WriteString(p.Keyword + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

func (p *Problem) String() string { return p.Error() }

// Problems is every error found in one file, in line order.
type Problems []*Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}
