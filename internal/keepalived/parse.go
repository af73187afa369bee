package keepalived

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// stmt is one statement of keepalived.conf: a keyword, its arguments and
// an optional { block }.
type stmt struct {
	file     string // the file it is in: the imported one or an included one
	line     int
	words    []string // keyword first; quotes removed
	quoted   []bool   // whether words[i] was written in double quotes
	raw      string   // the arguments as written, comment removed
	block    []*stmt
	hasBlock bool
}

func (s *stmt) keyword() string { return s.words[0] }

func (s *stmt) args() []string { return s.words[1:] }

// token is one word, brace or end of line.
type token struct {
	line   int
	text   string
	quoted bool
	kind   byte // 'w' word, '{', '}', '\n'
	end    int  // byte offset just after the token in its line
}

// tokenize splits keepalived.conf into words, braces and line ends. Comments
// run from # or ! to the end of the line; double quotes group words.
func tokenize(name string, src []byte) ([]token, [][]byte, error) {
	lines := strings.Split(string(src), "\n")
	var raws [][]byte
	var toks []token
	for i, l := range lines {
		n := i + 1
		l = strings.TrimSuffix(l, "\r")
		raws = append(raws, []byte(l))
		for j := 0; j < len(l); {
			c := l[j]
			switch {
			case c == ' ' || c == '\t':
				j++
			case c == '#' || c == '!':
				j = len(l)
			case c == '{' || c == '}':
				toks = append(toks, token{line: n, text: string(c), kind: c, end: j + 1})
				j++
			case c == '"':
				k := strings.IndexByte(l[j+1:], '"')
				if k < 0 {
					return nil, nil, &Problem{File: name, Line: n, Keyword: firstWord(l), Msg: "unterminated double quote"}
				}
				toks = append(toks, token{line: n, text: l[j+1 : j+1+k], quoted: true, kind: 'w', end: j + k + 2})
				j += k + 2
			default:
				k := j
				for k < len(l) && !strings.ContainsRune(" \t{}\"#!", rune(l[k])) {
					k++
				}
				toks = append(toks, token{line: n, text: l[j:k], kind: 'w', end: k})
				j = k
			}
		}
		toks = append(toks, token{line: n, kind: '\n'})
	}
	return toks, raws, nil
}

func firstWord(l string) string {
	f := strings.Fields(l)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// parse builds the statement tree of a keepalived.conf. A statement ends
// at the end of its line, at "{" (which opens its block, also when written
// alone on the next line) or at "}".
//
// A line that starts with @ID is conditional, as with keepalived -i ID: it
// counts only when configID is ID (@^ID: only when it is not). Without a
// configID every conditional line is an error, all of them listed.
func parse(name string, src []byte, configID string) ([]*stmt, Problems) {
	toks, raws, err := tokenize(name, src)
	if err != nil {
		return nil, Problems{err.(*Problem)}
	}
	var conds Problems
	lineStart, skipLine := true, false
	root := &stmt{hasBlock: true}
	stack := []*stmt{root}
	var cur *stmt  // statement being read
	var last *stmt // the statement just ended on a line end, for "{" on the next line
	var rawStart, rawEnd int
	end := func() {
		if cur != nil {
			cur.raw = strings.TrimSpace(string(raws[cur.line-1][rawStart:rawEnd]))
		}
		last, cur = cur, nil
	}
	for _, t := range toks {
		if skipLine && t.kind != '\n' {
			continue
		}
		if t.kind == 'w' && lineStart && cur == nil && strings.HasPrefix(t.text, "@") && !t.quoted {
			id, not := strings.CutPrefix(t.text[1:], "^")
			switch {
			case configID == "":
				conds = append(conds, &Problem{File: name, Line: t.line, Keyword: t.text,
					Msg: "conditional line: pass --config-id ID (keepalived's -i ID) to say which lines apply to this host"})
				skipLine = true
			case (id == configID) == not:
				skipLine = true
			}
			lineStart = false
			continue
		}
		lineStart = false
		switch t.kind {
		case 'w':
			if cur == nil {
				top := stack[len(stack)-1]
				cur = &stmt{file: name, line: t.line}
				top.block = append(top.block, cur)
				rawStart = t.end
			}
			cur.words = append(cur.words, t.text)
			cur.quoted = append(cur.quoted, t.quoted)
			rawEnd = t.end
		case '\n':
			lineStart, skipLine = true, false
			if cur != nil {
				end()
			}
		case '{':
			s := cur
			if s == nil {
				s = last
			}
			end()
			last = nil
			if s == nil || s.hasBlock {
				return nil, Problems{{File: name, Line: t.line, Keyword: "{", Msg: "a block must follow a keyword"}}
			}
			s.hasBlock = true
			stack = append(stack, s)
		case '}':
			end()
			last = nil
			if len(stack) == 1 {
				return nil, Problems{{File: name, Line: t.line, Keyword: "}", Msg: "closes a block that was never opened"}}
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 1 {
		open := stack[len(stack)-1]
		return nil, Problems{{File: name, Line: open.line, Keyword: open.keyword(), Msg: "block is never closed (missing })"}}
	}
	if len(conds) > 0 {
		return nil, conds
	}
	return root.block, nil
}

// Bounds on includes: deeper nesting is taken for a loop; a glob or a
// file larger than these is not a keepalived configuration.
const (
	maxIncludeDepth = 8
	maxIncludeFiles = 100
	maxIncludeSize  = 1 << 20
)

// includer follows include directives, reading files from fsys (rooted
// at /).
type includer struct {
	fsys     fs.FS
	configID string
}

// fsPath is the name in fsys of the host path p.
func fsPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if p = strings.TrimPrefix(filepath.ToSlash(p), "/"); p == "" {
		return "."
	}
	return p
}

// includes replaces every `include PATTERN` statement, at any level, by
// the statements of the files it names, as keepalived does: a relative
// pattern is relative to the directory of the file holding the include,
// and a glob takes every match in order. Problems name the include's file
// and line; those inside an included file name that file and its lines.
// Only regular files are read, at most maxIncludeFiles per include, each
// at most maxIncludeSize.
func (ic *includer) includes(stmts []*stmt, dir string, depth int) ([]*stmt, Problems) {
	var out []*stmt
	var probs Problems
	for _, s := range stmts {
		if s.keyword() != "include" {
			if s.hasBlock {
				var ps Problems
				s.block, ps = ic.includes(s.block, dir, depth)
				probs = append(probs, ps...)
			}
			out = append(out, s)
			continue
		}
		fail := func(format string, a ...any) {
			probs = append(probs, &Problem{File: s.file, Line: s.line, Keyword: "include", Msg: fmt.Sprintf(format, a...)})
		}
		if len(s.args()) != 1 || s.hasBlock {
			fail("want `include FILE` (a path or a glob)")
			continue
		}
		if depth >= maxIncludeDepth {
			fail("includes nested more than %d deep: does a file include itself?", maxIncludeDepth)
			continue
		}
		pattern := s.args()[0]
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		files, err := fs.Glob(ic.fsys, fsPath(pattern))
		switch {
		case err != nil || len(files) == 0:
			fail("%s: no such file", pattern)
			continue
		case len(files) > maxIncludeFiles:
			fail("%s matches %d files; at most %d are followed", pattern, len(files), maxIncludeFiles)
			continue
		}
		for _, name := range files {
			f := "/" + name
			if fi, err := fs.Stat(ic.fsys, name); err != nil {
				fail("reading %s: %v", f, err)
				continue
			} else if !fi.Mode().IsRegular() || fi.Size() > maxIncludeSize {
				fail("%s is not a keepalived configuration (not a regular file of at most %d bytes)", f, maxIncludeSize)
				continue
			}
			src, err := fs.ReadFile(ic.fsys, name)
			if err != nil {
				fail("reading %s: %v", f, err)
				continue
			}
			inc, ps := parse(f, src, ic.configID)
			if len(ps) == 0 {
				inc, ps = ic.includes(inc, filepath.Dir(f), depth+1)
			}
			probs = append(probs, ps...)
			out = append(out, inc...)
		}
	}
	return out, probs
}
