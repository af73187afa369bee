package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hbdproject/hbd/internal/keepalived"
)

func init() {
	register(command{name: "import-keepalived", summary: "convert a keepalived.conf (one VRRP instance) to an hbd config", run: runImportKeepalived})
}

func runImportKeepalived(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import-keepalived", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts keepalived.Options
	fs.StringVar(&opts.Node, "node", "", "this host's node `name` (default: left out, so hbd uses the host name)")
	fs.StringVar(&opts.KeyFile, "key-file", keepalived.DefaultKeyFile, "the shared key `file` to name in auth_key_file")
	fs.StringVar(&opts.Listen, "listen", "", "this host's heartbeat `address`, when the instance has no unicast_src_ip")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hbd import-keepalived [--node NAME] [--key-file FILE] [--listen ADDR] FILE\n\n"+
			"Reads a keepalived.conf with one vrrp_instance (FILE, or - for standard\n"+
			"input) and prints the equivalent hbd config on standard output, with\n"+
			"comments saying where each value came from. Warnings about settings left\n"+
			"out go to standard error; anything that cannot be mapped is an error\n"+
			"naming its line. Then: hbd keygen > /etc/hbd/key, and hbd check.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{code: 2}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	opts.File = fs.Arg(0)
	var src []byte
	var err error
	if opts.File == "-" {
		src, err = io.ReadAll(os.Stdin)
	} else {
		src, err = os.ReadFile(opts.File)
	}
	if err != nil {
		return fmt.Errorf("reading keepalived config: %w", err)
	}
	res, err := keepalived.Import(src, opts)
	var probs keepalived.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Fprintln(stderr, p)
		}
		fmt.Fprintf(stderr, "%s: %d error(s); nothing imported\n", opts.File, len(probs))
		return exitError{code: 1}
	}
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, w)
	}
	_, err = stdout.Write(res.YAML)
	return err
}
