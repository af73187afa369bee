package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hbdproject/hbd/internal/keepalived"
)

func init() {
	register(command{name: "import-keepalived", summary: "convert a keepalived.conf (its VRRP instances as VIP groups) to an hbd config", run: runImportKeepalived})
}

func runImportKeepalived(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import-keepalived", "Usage: hbd import-keepalived [--node NAME] [--key-file FILE] [--listen ADDR] [--config-id ID] FILE\n\n"+
		"Reads a keepalived.conf (FILE, or - for standard input; include\n"+
		"directives are followed) and prints the equivalent hbd config on\n"+
		"standard output, with comments saying where each value came from. One\n"+
		"vrrp_instance gives a plain config; several (at most 8) give one VIP\n"+
		"group each, and must then agree on the interface, unicast_src_ip,\n"+
		"unicast_peer and advert_int, which all groups share. A program given\n"+
		"without a path is looked up on this host's PATH.\n"+
		"Warnings about settings left out or changed go to standard error;\n"+
		"anything that cannot be mapped is an error naming its file and line, and\n"+
		"nothing is printed. Flags may also follow FILE. Then: hbd keygen --write\n"+
		"/etc/hbd/key, and hbd check.\n")
	var opts keepalived.Options
	fs.StringVar(&opts.Node, "node", "", "this host's node `name` (default: left out, so hbd uses the host name)")
	fs.StringVar(&opts.KeyFile, "key-file", keepalived.DefaultKeyFile, "the shared key `file` to name in auth_key_file")
	fs.StringVar(&opts.Listen, "listen", "", "this host's heartbeat `address`, when the instance has no unicast_src_ip")
	fs.StringVar(&opts.ConfigID, "config-id", "", "keep the conditional lines (@`ID` …) for this config id, as keepalived -i ID does")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want one FILE (or -), got %d arguments", len(pos))
	}
	opts.File = pos[0]
	var src []byte
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
