package packaging

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// The project's own licence. It has not chosen one yet: say so plainly
// rather than invent one.
const (
	ownLicense     = "hbd-no-licence-yet"
	ownLicenseText = "The hbd project has not published a licence yet. Until it does, its\nauthors reserve all rights to hbd's own code."
)

// copyright writes the package's copyright file in Debian's machine-
// readable format (copyright-format 1.0). hbd is one static binary, so it
// carries the code of every Go module linked into it: the list comes from
// the binary's own build information, and each licence text from the
// module cache, so the file cannot drift from what ships.
func copyright(binary string) ([]byte, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("packaging: reading the build info of %s: %w", binary, err)
	}
	env, err := exec.Command("go", "env", "GOROOT", "GOMODCACHE").Output()
	if err != nil {
		return nil, fmt.Errorf("packaging: go env: %w", err)
	}
	goroot, modcache, _ := strings.Cut(strings.TrimSpace(string(env)), "\n")

	var b bytes.Buffer
	b.WriteString(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hbd
Upstream-Contact: The hbd project <hbd@example.org>
Source: https://github.com/hbdproject/hbd
Comment: /usr/bin/hbd is statically linked: besides hbd's own code it
 contains the Go standard library and the Go modules listed below, each
 under its own licence.

Files: *
Copyright: 2026 The hbd project
License: ` + ownLicense + "\n" + indent(ownLicenseText) + "\n")

	if err := licenseParagraph(&b, "Go standard library ("+bi.GoVersion+")", "vendor/go/*", goroot); err != nil {
		return nil, err
	}
	for _, m := range bi.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		dir := filepath.Join(modcache, escapePath(m.Path)+"@"+escapePath(m.Version))
		if err := licenseParagraph(&b, m.Path+" "+m.Version, "vendor/"+m.Path+"/*", dir); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// licenseParagraph appends a Files paragraph for the code in dir.
func licenseParagraph(b *bytes.Buffer, name, files, dir string) error {
	text, err := readFirst(dir, "LICENSE", "LICENSE.txt", "LICENSE.md", "license", "COPYING")
	if err != nil {
		return fmt.Errorf("packaging: no licence file for %s in %s: %w", name, dir, err)
	}
	notice, _ := readFirst(dir, "NOTICE")
	short, err := licenseName(text)
	if err != nil {
		return fmt.Errorf("packaging: %s: %w", name, err)
	}
	holders := copyrightLines(notice + "\n" + text)
	if len(holders) == 0 {
		holders = []string{"the authors of " + strings.Fields(name)[0]}
	}
	fmt.Fprintf(b, "\nFiles: %s\nCopyright: %s\n", files, strings.Join(holders, "\n "))
	fmt.Fprintf(b, "Comment: %s\n", name)
	if notice != "" {
		b.WriteString(indent("Its NOTICE file:\n\n"+notice) + "\n")
	}
	fmt.Fprintf(b, "License: %s\n", short)
	if short == "Apache-2.0" {
		b.WriteString(" On Debian systems the full text of the Apache License 2.0 is in\n /usr/share/common-licenses/Apache-2.0.\n")
	} else {
		b.WriteString(indent(text) + "\n")
	}
	return nil
}

func readFirst(dir string, names ...string) (string, error) {
	err := os.ErrNotExist
	for _, n := range names {
		b, rerr := os.ReadFile(filepath.Join(dir, n))
		if rerr == nil {
			return strings.TrimSpace(string(b)), nil
		}
		err = rerr
	}
	return "", err
}

// licenseName names a licence text with its copyright-format short name.
func licenseName(text string) (string, error) {
	t := strings.Join(strings.Fields(text), " ")
	apache := strings.Contains(t, "Apache License") && strings.Contains(t, "Version 2.0")
	mit := strings.Contains(t, "Permission is hereby granted, free of charge")
	switch {
	case apache && mit:
		return "Expat and Apache-2.0", nil
	case apache:
		return "Apache-2.0", nil
	case mit:
		return "Expat", nil
	case strings.Contains(t, "Redistribution and use in source and binary forms"):
		if strings.Contains(t, "Neither the name") || strings.Contains(t, "names of its contributors") {
			return "BSD-3-clause", nil
		}
		return "BSD-2-clause", nil
	case strings.Contains(t, "Mozilla Public License Version 2.0"):
		return "MPL-2.0", nil
	}
	return "", fmt.Errorf("a licence copyright.go does not know: name it in licenseName")
}

var copyrightRE = regexp.MustCompile(`(?mi)^\s*Copyright\s+(?:\(c\)\s*|©\s*)?(\d{4}.*)$`)

// copyrightLines are the holders named in a licence or notice.
func copyrightLines(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range copyrightRE.FindAllStringSubmatch(text, -1) {
		h := strings.TrimSpace(m[1])
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// indent makes text a continuation of a control field: every line starts
// with a space, and an empty line is " .".
func indent(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			l = "."
		}
		lines[i] = " " + l
	}
	return strings.Join(lines, "\n")
}

// escapePath is the module cache's case encoding: an upper-case letter
// becomes "!" and its lower case.
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
