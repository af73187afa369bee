package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one mistake in a config file.
type FieldError struct {
	Field string // dotted path, e.g. "tracks[0].interval"; empty for syntax errors
	Line  int    // 1-based; 0 when the field is missing from the file
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "%s: ", e.Field)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every mistake found in one file, in line order.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Options change what Load checks.
type Options struct {
	// InterfaceMayBeMissing turns a missing interface into a warning (for
	// `hbd check` on another machine) instead of an error (for `hbd run`).
	InterfaceMayBeMissing bool
	// InterfaceExists reports whether an interface exists; nil uses the
	// system's. Tests replace it.
	InterfaceExists func(name string) bool
	// Hostname is the default node name; nil uses os.Hostname.
	Hostname func() (string, error)
	// NoBGP, when set, says this build has no BGP announcer: a bgp
	// section is then an error with this message, on the section's line.
	NoBGP string
}

// Result is a loaded config with the warnings found on the way.
type Result struct {
	Config   *Config
	Key      []byte
	Warnings []*FieldError
}

// Load reads, decodes, defaults and validates the file at path. On failure
// the error is an Errors listing every mistake.
func Load(path string, opts Options) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	return Parse(data, path, opts)
}

var lineRE = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
var columnRE = regexp.MustCompile(`^column (\d+): (.*)$`)
var unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// Parse is Load for bytes already read; path names the file in messages and
// resolves a relative auth_key_file.
func Parse(data []byte, path string, opts Options) (*Result, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(err, data)}
	}
	idx := indexNode(&root)

	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var errs Errors
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, Errors{syntaxError(err, data)}
		}
		for _, s := range te.Errors {
			errs = append(errs, idx.typeError(s))
		}
	}
	v := validator{idx: idx, opts: opts, path: path}
	res := &Result{Config: &c}
	if len(errs) == 0 {
		v.defaults(&c)
		res.Key = v.validate(&c)
	}
	errs = append(errs, v.errs...)
	res.Warnings = v.warnings
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return res, errs
	}
	return res, nil
}

// syntaxError turns a YAML error into a FieldError with its line; an error
// the parser gives without one (an unexpected end of the file) is placed
// on the last line.
func syntaxError(err error, data []byte) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &FieldError{Line: n, Msg: "YAML syntax: " + m[2]}
	}
	return &FieldError{Line: max(1, bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n"))+1), Msg: "YAML syntax: " + msg}
}

// index maps field paths to the lines they are written on, and back.
type index struct {
	lines  map[string]int    // "tracks[0].interval" -> line of its value
	fields map[int]string    // line of a key -> its path
	values map[[2]int]string // line and column of a scalar value -> its path
}

func indexNode(root *yaml.Node) *index {
	ix := &index{lines: map[string]int{}, fields: map[int]string{}, values: map[[2]int]string{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		ix.walk(root.Content[0], "")
	}
	return ix
}

func (ix *index) walk(n *yaml.Node, path string) {
	if path != "" {
		if _, ok := ix.lines[path]; !ok {
			ix.lines[path] = n.Line
		}
		if n.Kind == yaml.ScalarNode {
			ix.values[[2]int{n.Line, n.Column}] = path
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			ix.fields[k.Line] = p
			ix.walk(val, p)
			if val.Kind != yaml.ScalarNode {
				ix.lines[p] = k.Line
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			ix.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// line returns the line of path, or of its nearest written parent.
func (ix *index) line(path string) int {
	for p := path; p != ""; {
		if l, ok := ix.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (ix *index) typeError(s string) *FieldError {
	m := lineRE.FindStringSubmatch(s)
	if m == nil {
		return &FieldError{Msg: s}
	}
	n, _ := strconv.Atoi(m[1])
	fe := &FieldError{Line: n, Field: ix.fields[n], Msg: m[2]}
	if c := columnRE.FindStringSubmatch(m[2]); c != nil {
		col, _ := strconv.Atoi(c[1])
		fe.Msg = c[2]
		if f, ok := ix.values[[2]int{n, col}]; ok {
			fe.Field = f
		}
	}
	if u := unknownRE.FindStringSubmatch(m[2]); u != nil {
		fe.Msg = fmt.Sprintf("unknown field %q%s", u[1], suggest(u[1]))
	} else if strings.HasPrefix(m[2], "cannot unmarshal") {
		fe.Msg = "wrong type: " + strings.TrimPrefix(m[2], "cannot unmarshal ")
	}
	return fe
}
