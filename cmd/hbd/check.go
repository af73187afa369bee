package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/hbdproject/hbd/internal/config"
	"go.yaml.in/yaml/v3"
)

func init() {
	register(command{name: "check", summary: "validate a config file (like nginx -t) and print the effective config", run: runCheck})
	register(command{name: "keygen", summary: "print a new random shared key (hbd keygen > /etc/hbd/key)", run: runKeygen})
}

const defaultConfig = "/etc/hbd/hbd.yaml"

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", defaultConfig, "config file to check")
	quiet := fs.Bool("q", false, "print only errors and warnings, not the effective config")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hbd check [-c FILE] [-q]\n\nValidates FILE: prints the effective config (defaults filled in), or every\nerror with its line and field, and exits 1 on error. A missing interface is\na warning here (the file may be meant for another host) and an error for\nhbd run.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := config.Load(*path, config.Options{InterfaceMayBeMissing: true})
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
		}
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintf(stderr, "%s: %s\n", *path, e)
		}
		fmt.Fprintf(stderr, "%s: %d error(s); configuration is NOT valid\n", *path, len(errs))
		return exitError{1}
	}
	if err != nil {
		return err
	}
	if !*quiet {
		out, err := yaml.Marshal(res.Config)
		if err != nil {
			return fmt.Errorf("printing the effective config: %w", err)
		}
		fmt.Fprintf(stdout, "# effective configuration of %s\n%s", *path, out)
	}
	fmt.Fprintf(stderr, "%s: configuration is valid\n", *path)
	return nil
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hbd keygen > /etc/hbd/key && chmod 600 /etc/hbd/key\n\nPrints 32 random bytes as 64 hex digits: the shared key every node of a\ncluster must have in its auth_key_file.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("reading random bytes: %w", err)
	}
	_, err := fmt.Fprintln(stdout, hex.EncodeToString(b))
	return err
}
