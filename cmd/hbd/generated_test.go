package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The command reference (docs/cli.md, the source of the hbd(8) man page)
// and the bash and zsh completions are generated from the commands' own
// help, so none of them can drift from the binary. After changing a
// command or a flag: go test ./cmd/hbd -run TestGeneratedFiles -update
var update = flag.Bool("update", false, "rewrite docs/cli.md and the shell completions")

var generated = map[string]func() string{
	"../../docs/cli.md":                        cliDoc,
	"../../internal/packaging/debian/hbd.bash": bashCompletion,
	"../../internal/packaging/debian/_hbd":     zshCompletion,
}

func TestGeneratedFiles(t *testing.T) {
	for path, gen := range generated {
		want := gen()
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s is stale: run go test ./cmd/hbd -run TestGeneratedFiles -update", path)
		}
	}
}

// cmdFlag is one flag as a command's help lists it.
type cmdFlag struct {
	name, arg, usage string
}

// spelled is the flag as users type it: -c, --json.
func (f cmdFlag) spelled() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

// cmdHelp is a command's help, taken apart.
type cmdHelp struct {
	name, summary, usage string
	text                 []string // paragraphs
	flags                []cmdFlag
}

func helpOf(name string) cmdHelp {
	var out, errb bytes.Buffer
	if code := run([]string{name, "--help"}, &out, &errb); code != 0 {
		panic(fmt.Sprintf("hbd %s --help: exit %d: %s", name, code, errb.String()))
	}
	h := cmdHelp{name: name, summary: commands[name].summary}
	body, flags, _ := strings.Cut(out.String(), "\nFlags:\n")
	paras := strings.Split(strings.TrimSpace(body), "\n\n")
	h.usage = strings.TrimPrefix(paras[0], "Usage: ")
	for _, p := range paras[1:] {
		h.text = append(h.text, strings.Join(strings.Fields(p), " "))
	}
	lines := strings.Split(flags, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "  -") {
			continue
		}
		// "  -c file" with the usage on the next line, or "  -q\tusage"
		head, usage, _ := strings.Cut(strings.TrimPrefix(lines[i], "  -"), "\t")
		name, arg, _ := strings.Cut(strings.TrimSpace(head), " ")
		f := cmdFlag{name: name, arg: arg, usage: strings.TrimSpace(usage)}
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    \t") {
			i++
			f.usage += strings.TrimSpace(lines[i])
		}
		h.flags = append(h.flags, f)
	}
	return h
}

func allHelp() []cmdHelp {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var hs []cmdHelp
	for _, n := range names {
		hs = append(hs, helpOf(n))
	}
	return hs
}

func cliDoc() string {
	var b strings.Builder
	b.WriteString("# hbd command reference\n\n")
	b.WriteString("## Synopsis\n\n```\nhbd COMMAND [flags] [arguments]\nhbd --help | --version\n```\n\n")
	b.WriteString("## Description\n\nhbd keeps a virtual IP (VIP) alive across two or a few Linux hosts: the\ndaemon (`hbd run`) exchanges authenticated heartbeats with its peers over\nUDP and TCP, and the elected master holds the VIP and announces it. The\nother commands check a configuration, talk to the running daemon over its\ncontrol socket, or help setting up.\n\nFlags may come before or after the arguments; `--` ends them. Every\ncommand takes `-h` or `--help`.\n\n")
	b.WriteString("## Commands\n\n")
	for _, h := range allHelp() {
		fmt.Fprintf(&b, "### hbd %s\n\n%s.\n\n```\n%s\n```\n\n", h.name, upperFirst(h.summary), h.usage)
		for _, p := range h.text {
			fmt.Fprintf(&b, "%s\n\n", p)
		}
		if len(h.flags) > 0 {
			b.WriteString("| Flag | Meaning |\n| --- | --- |\n")
			for _, f := range h.flags {
				arg := ""
				if f.arg != "" {
					arg = " " + strings.ToUpper(f.arg)
				}
				fmt.Fprintf(&b, "| `%s%s` | %s |\n", f.spelled(), arg, strings.ReplaceAll(f.usage, "|", `\|`))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString(`## Exit status

- 0: success, or help was asked for.
- 1: the command failed; the error is on standard error (for ` + "`hbd check`" + `, the
  config is not valid).
- 2: a usage mistake: an unknown flag, a missing or extra argument.

## Logs

` + "`hbd run`" + ` logs to standard error. Under systemd, where standard error is the
journal, it writes journal entries with their priority (` + "`journalctl -u hbd -p\nwarning`" + ` shows warnings and errors only) and each attribute as a field
with an HBD_ prefix: ` + "`journalctl -u hbd HBD_STATE=MASTER`" + ` lists the times this
node became master, and HBD_PEER and HBD_REASON say which peer and why.

## Files

- ` + "`/etc/hbd/hbd.yaml`" + `: the configuration, hbd.yaml(5).
- ` + "`/etc/hbd/key`" + `: the shared key, mode 0600, owned by the user hbd runs as.
- ` + "`/run/hbd/hbd.sock`" + `: the control socket of ` + "`hbd status`" + `, ` + "`hbd handover`" + ` and
  ` + "`hbd maintenance`" + `.

## See also

hbd.yaml(5), systemctl(1), journalctl(1), keepalived(8); the guides in
/usr/share/doc/hbd (the hbd-bgp package's: /usr/share/doc/hbd-bgp): [install.md](install.md), [runbooks.md](runbooks.md),
[keepalived.md](keepalived.md), [how-it-works.md](how-it-works.md),
and the configuration reference [config.md](config.md).

This page is made from the commands' own help (` + "`hbd COMMAND --help`" + `) by
` + "`go test ./cmd/hbd -run TestGeneratedFiles -update`" + `, and is the source of
the hbd(8) manual page.
`)
	return b.String()
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// positional is what a command takes besides flags, for completion.
var positional = map[string]struct{ words, what string }{
	"maintenance":       {words: "on off"},
	"import-keepalived": {what: "file"},
}

func bashCompletion() string {
	var b strings.Builder
	hs := allHelp()
	var names []string
	for _, h := range hs {
		names = append(names, h.name)
	}
	b.WriteString("# bash completion for hbd(8). Generated from hbd's help by\n# go test ./cmd/hbd -run TestGeneratedFiles -update; do not edit.\n\n")
	b.WriteString("_hbd() {\n\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n")
	fmt.Fprintf(&b, "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\tCOMPREPLY=($(compgen -W '%s --help --version' -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(names, " "))
	b.WriteString("\tcase ${COMP_WORDS[1]} in\n")
	for _, h := range hs {
		var flags, fileFlags, valueFlags []string
		for _, f := range h.flags {
			flags = append(flags, f.spelled())
			switch {
			case f.arg == "file" || f.arg == "socket":
				fileFlags = append(fileFlags, "-"+f.name, "--"+f.name)
			case f.arg != "":
				valueFlags = append(valueFlags, "-"+f.name, "--"+f.name)
			}
		}
		flags = append(flags, "--help")
		fmt.Fprintf(&b, "\t%s)\n\t\tcase $prev in\n", h.name)
		if len(fileFlags) > 0 {
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", strings.Join(fileFlags, "|"))
		}
		if len(valueFlags) > 0 {
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=(); return ;;\n", strings.Join(valueFlags, "|"))
		}
		b.WriteString("\t\tesac\n")
		p := positional[h.name]
		fmt.Fprintf(&b, "\t\tCOMPREPLY=($(compgen -W '%s' -- \"$cur\"))\n", strings.TrimSpace(strings.Join(flags, " ")+" "+p.words))
		if p.what == "file" {
			b.WriteString("\t\t[[ $cur == -* ]] || COMPREPLY+=($(compgen -f -- \"$cur\"))\n")
		}
		b.WriteString("\t\t;;\n")
	}
	b.WriteString("\tesac\n}\ncomplete -o filenames -F _hbd hbd\n")
	return b.String()
}

func zshCompletion() string {
	var b strings.Builder
	hs := allHelp()
	b.WriteString("#compdef hbd\n# zsh completion for hbd(8). Generated from hbd's help by\n# go test ./cmd/hbd -run TestGeneratedFiles -update; do not edit.\n\n")
	b.WriteString("_hbd() {\n\tlocal -a commands\n\tcommands=(\n")
	for _, h := range hs {
		fmt.Fprintf(&b, "\t\t%s\n", zshQuote(h.name+":"+h.summary))
	}
	b.WriteString("\t)\n\tif (( CURRENT == 2 )); then\n\t\t_describe -t commands 'hbd command' commands\n\t\treturn\n\tfi\n")
	b.WriteString("\tlocal cmd=$words[2]\n\tshift words\n\t(( CURRENT-- ))\n\tcase $cmd in\n")
	for _, h := range hs {
		fmt.Fprintf(&b, "\t%s)\n\t\t_arguments", h.name)
		for _, f := range h.flags {
			desc := strings.NewReplacer("[", "(", "]", ")", ":", ";", "'", "").Replace(f.usage)
			spec := f.spelled() + "[" + desc + "]"
			switch {
			case f.arg == "file" || f.arg == "socket":
				spec += ":" + f.arg + ":_files"
			case f.arg != "":
				spec += ":" + f.arg + ": "
			}
			fmt.Fprintf(&b, " \\\n\t\t\t%s", zshQuote(spec))
		}
		switch p := positional[h.name]; {
		case p.words != "":
			fmt.Fprintf(&b, " \\\n\t\t\t%s", zshQuote("1:argument:("+p.words+")"))
		case p.what == "file":
			fmt.Fprintf(&b, " \\\n\t\t\t%s", zshQuote("1:file:_files"))
		}
		b.WriteString("\n\t\t;;\n")
	}
	b.WriteString("\tesac\n}\n\n_hbd \"$@\"\n")
	return b.String()
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestBashCompletion runs the generated completion in bash.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed")
	}
	script, _ := filepath.Abs("../../internal/packaging/debian/hbd.bash")
	for _, tc := range []struct {
		words string
		want  []string
	}{
		{"hbd ch", []string{"check"}},
		{"hbd maintenance o", []string{"off", "on"}},
		{"hbd status --j", []string{"--json"}},
		{"hbd keygen --", []string{"--force", "--help", "--owner", "--write"}},
	} {
		cmd := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=($2); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _hbd; printf '%s\n' "${COMPREPLY[@]}" | sort`, "bash", script, tc.words)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.words, err, out)
		}
		if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("completing %q: %q, want %q", tc.words, got, tc.want)
		}
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command(zsh, "-n", "../../internal/packaging/debian/_hbd").CombinedOutput(); err != nil {
			t.Errorf("zsh -n _hbd: %v\n%s", err, out)
		}
	}
}
