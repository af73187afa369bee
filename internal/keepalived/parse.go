package keepalived

import (
	"strings"
)

// stmt is one statement of keepalived.conf: a keyword, its arguments and
// an optional { block }.
type stmt struct {
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
func parse(name string, src []byte) ([]*stmt, error) {
	toks, raws, err := tokenize(name, src)
	if err != nil {
		return nil, err
	}
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
		switch t.kind {
		case 'w':
			if cur == nil {
				top := stack[len(stack)-1]
				cur = &stmt{line: t.line}
				top.block = append(top.block, cur)
				rawStart = t.end
			}
			cur.words = append(cur.words, t.text)
			cur.quoted = append(cur.quoted, t.quoted)
			rawEnd = t.end
		case '\n':
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
				return nil, &Problem{File: name, Line: t.line, Keyword: "{", Msg: "a block must follow a keyword"}
			}
			s.hasBlock = true
			stack = append(stack, s)
		case '}':
			end()
			last = nil
			if len(stack) == 1 {
				return nil, &Problem{File: name, Line: t.line, Keyword: "}", Msg: "closes a block that was never opened"}
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 1 {
		open := stack[len(stack)-1]
		return nil, &Problem{File: name, Line: open.line, Keyword: open.keyword(), Msg: "block is never closed (missing })"}
	}
	return root.block, nil
}
