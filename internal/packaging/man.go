package packaging

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ManPage is a manual page made from a Markdown doc, so that the page and
// the doc cannot drift apart.
type ManPage struct {
	Name    string // hbd, hbd.yaml
	Section int    // 8 for the daemon, 5 for its file format
	Source  string // the doc in DocsDir
	Summary string // the NAME line's text after "\-"
}

var (
	mdCode   = regexp.MustCompile("`([^`]+)`")
	mdBold   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdItalic = regexp.MustCompile(`\*([^*\s][^*]*)\*`)
	mdLinkRE = regexp.MustCompile(`\[([^\]]+)\]\(([^)]+)\)`)
	mdOrder  = regexp.MustCompile(`^(\d+)\. `)
)

// Roff renders md, a doc in the subset of Markdown the docs use
// (headings, paragraphs, lists, fenced code, tables, inline code, bold,
// italics, links), as a man(7) page dated date.
func (m ManPage) Roff(md []byte, date time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".\\\" Made from docs/%s by hbd's internal/packaging; edit the doc, not this page.\n", m.Source)
	fmt.Fprintf(&b, ".TH %s %d %s hbd \"hbd manual\"\n", strings.ToUpper(roffText(m.Name)), m.Section, date.Format("2006-01-02"))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roffText(m.Name), roffText(m.Summary))

	lines := strings.Split(strings.ReplaceAll(string(md), "\r\n", "\n"), "\n")
	section := false // inside a .SH of the doc
	para := false    // the last output was paragraph text
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "# "):
			continue // the title: NAME says it
		case strings.HasPrefix(l, "```"):
			b.WriteString(".PP\n.RS 4\n.nf\n")
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				b.WriteString(roffLiteral(lines[i]) + "\n")
			}
			b.WriteString(".fi\n.RE\n")
			para = false
		case strings.HasPrefix(l, "## "):
			fmt.Fprintf(&b, ".SH %s\n", roffText(strings.ToUpper(strings.TrimPrefix(l, "## "))))
			section, para = true, false
		case strings.HasPrefix(l, "### "):
			fmt.Fprintf(&b, ".SS %s\n", inline(strings.TrimPrefix(l, "### ")))
			para = false
		case strings.TrimSpace(l) == "":
			para = false
		case strings.HasPrefix(l, "|"):
			var rows [][]string
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				rows = append(rows, tableCells(lines[i]))
			}
			i--
			table(&b, rows)
			para = false
		case strings.HasPrefix(l, "- ") || mdOrder.MatchString(l):
			mark, text := `\(bu`, strings.TrimPrefix(l, "- ")
			if n := mdOrder.FindStringSubmatch(l); n != nil {
				mark, text = n[1]+".", strings.TrimPrefix(l, n[0])
			}
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") && strings.TrimSpace(lines[i+1]) != "" {
				i++
				text += " " + strings.TrimSpace(lines[i])
			}
			fmt.Fprintf(&b, ".IP %s 4\n%s\n", mark, inline(text))
			para = true
		default:
			if !section {
				b.WriteString(".SH DESCRIPTION\n")
				section = true
			}
			if !para {
				b.WriteString(".PP\n")
			}
			b.WriteString(inline(strings.TrimSpace(l)) + "\n")
			para = true
		}
	}
	return b.Bytes()
}

// table renders a Markdown table as tagged paragraphs: the first cell is
// the tag, the middle cells "Header: value" lines, the last the body.
func table(b *bytes.Buffer, rows [][]string) {
	if len(rows) < 3 {
		return
	}
	head := rows[0]
	for _, r := range rows[2:] {
		if len(r) == 0 {
			continue
		}
		fmt.Fprintf(b, ".TP\n%s\n", inline(r[0]))
		for j := 1; j < len(r); j++ {
			if j == len(r)-1 && j > 1 {
				b.WriteString(".br\n")
			}
			text := inline(r[j])
			if j < len(r)-1 && j < len(head) {
				text = inline(head[j]) + ": " + text + "."
			}
			b.WriteString(text + "\n")
			if j < len(r)-2 {
				b.WriteString(".br\n")
			}
		}
	}
}

func tableCells(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimSuffix(strings.TrimPrefix(l, "|"), "|")
	// A \| inside a cell is a literal bar.
	l = strings.ReplaceAll(l, `\|`, "\x00")
	cells := strings.Split(l, "|")
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(strings.TrimSpace(c), "\x00", "|")
	}
	return cells
}

// inline renders Markdown inline markup on one line of prose.
func inline(s string) string {
	var codes []string
	s = mdCode.ReplaceAllStringFunc(s, func(c string) string {
		codes = append(codes, `\fB`+roffLiteralText(c[1:len(c)-1])+`\fR`)
		return fmt.Sprintf("\x01%d\x01", len(codes)-1)
	})
	s = mdLinkRE.ReplaceAllString(s, "$1")
	s = roffText(s)
	s = mdBold.ReplaceAllString(s, `\fB$1\fR`)
	s = mdItalic.ReplaceAllString(s, `\fI$1\fR`)
	for i, c := range codes {
		s = strings.Replace(s, fmt.Sprintf("\x01%d\x01", i), c, 1)
	}
	return lineStart(s)
}

// roffText escapes prose: backslashes, and dashes as hyphens stay.
func roffText(s string) string {
	return strings.ReplaceAll(s, `\`, `\e`)
}

// roffLiteralText escapes code: backslashes, and - as a minus sign so
// that flags can be copied from the page.
func roffLiteralText(s string) string {
	return strings.ReplaceAll(roffText(s), "-", `\-`)
}

// roffLiteral is one line of a code block.
func roffLiteral(s string) string {
	return lineStart(roffLiteralText(s))
}

// lineStart keeps a line that starts with . or ' from being a request.
func lineStart(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}
