// Command mkdeb builds dist/hbd_<version>_<arch>.deb (L2 only, built with
// the nobgp tag) and dist/hbd-bgp_<version>_<arch>.deb (with the BGP
// announcer; it replaces hbd): for each it compiles cmd/hbd (static,
// trimmed) with the package's build tags unless given -bin, and packs it
// with the units, the example configuration and the docs. Run it from the
// repository root:
//
//	go run ./internal/packaging/mkdeb [-package hbd|hbd-bgp] [-version 1.2.0] [-revision 1] [-arch amd64] [-out dist]
//
// -package builds one of the two; -bin needs -package (the binary must
// be built with that package's tags: packaging.L2.Tags or
// packaging.WithBGP.Tags).
//
// A -version in git-describe form (v1.2.0, v1.2.0-3-gabcdef0-dirty) is
// turned into a Debian upstream version (1.2.0, 1.2.0+3+gabcdef0+dirty),
// and the package's version is that and the revision: 1.2.0-1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/packaging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run() error {
	version := flag.String("version", "", "Debian `version` (default: from git describe, or 0.0.0~gitDATE.COMMIT)")
	arch := flag.String("arch", "amd64", "Debian `architecture` (amd64 or arm64); also GOARCH of the build")
	out := flag.String("out", "dist", "output `directory`")
	pkg := flag.String("package", "", "build only this `package`: hbd (L2 only) or hbd-bgp (with BGP); default both")
	bin := flag.String("bin", "", "a prebuilt, statically linked hbd `binary` built with -package's tags (default: build ./cmd/hbd with CGO_ENABLED=0)")
	docs := flag.String("docs", "docs", "`directory` of the Markdown docs")
	revision := flag.String("revision", "1", "Debian `revision` of the package")
	flag.Parse()

	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	variants := packaging.Variants
	if *pkg != "" {
		v, err := packaging.VariantByName(*pkg)
		if err != nil {
			return err
		}
		variants = []packaging.Variant{v}
	} else if *bin != "" {
		return fmt.Errorf("-bin needs -package: the two packages ship different builds")
	}

	ctx := context.Background()
	if *version == "" {
		*version = gitVersion(ctx)
	}
	upstream := packaging.DebianVersion(*version)
	commit, date := gitCommit(ctx)
	dir, err := os.MkdirTemp("", "hbd-mkdeb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, v := range variants {
		binary := *bin
		if binary == "" {
			binary = filepath.Join(dir, v.Package)
			if err := v.Compile(ctx, binary, *arch, upstream, commit, date); err != nil {
				return err
			}
		}
		deb, err := packaging.Build(ctx, packaging.Spec{Variant: v, Version: upstream + "-" + *revision, Date: date, Arch: *arch, Binary: binary, DocsDir: *docs, OutDir: *out})
		if err != nil {
			return err
		}
		fmt.Println(deb)
	}
	return nil
}

// gitVersion derives a Debian version: a tag v1.2.3 gives 1.2.3 (with
// +gitN.COMMIT past it), no tag gives 0.0.0~gitDATE.COMMIT.
func gitVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--tags", "--match", "v[0-9]*", "--long").Output()
	if err == nil {
		// v1.2.3-4-gabcdef0
		s := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
		parts := strings.Split(s, "-")
		if n := len(parts); n >= 3 {
			tag, count, commit := strings.Join(parts[:n-2], "~"), parts[n-2], strings.TrimPrefix(parts[n-1], "g")
			if count == "0" {
				return tag
			}
			return fmt.Sprintf("%s+git%s.%s", tag, count, commit)
		}
	}
	commit := "unknown"
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=7", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	date := time.Now().UTC().Format("20060102")
	if out, err := exec.CommandContext(ctx, "git", "log", "-1", "--format=%cd", "--date=format:%Y%m%d").Output(); err == nil {
		date = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("0.0.0~git%s.%s", date, commit)
}

// gitCommit is the commit being packaged and its date (the changelog's and
// the build's date, so that a rebuild of a commit gives the same package);
// outside git, "unknown" and now.
func gitCommit(ctx context.Context) (string, time.Time) {
	out, err := exec.CommandContext(ctx, "git", "log", "-1", "--format=%H %cI").Output()
	if err == nil {
		if commit, at, ok := strings.Cut(strings.TrimSpace(string(out)), " "); ok {
			if t, err := time.Parse(time.RFC3339, at); err == nil {
				return commit, t.UTC()
			}
		}
	}
	return "unknown", time.Now().UTC()
}
