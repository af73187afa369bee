//go:build nobgp

package daemon

import (
	"errors"
	"log/slog"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/metrics"
)

// NoBGP is config.Options.NoBGP for this build: it has no BGP announcer,
// so hbd check and hbd run refuse a config with a bgp section, saying
// which package has one.
const NoBGP = "this hbd is the L2-only build (the hbd package, built with the nobgp tag) and has no BGP announcer: install the hbd-bgp package (apt install hbd-bgp: the same hbd with BGP, replacing hbd), or remove the bgp section"

// errNoBGP is newSpeaker's error in a build without BGP; config.Load
// already refuses the bgp section with the same words.
var errNoBGP = errors.New(NoBGP)

// newSpeaker refuses: the nobgp build leaves GoBGP (and with it gRPC and
// protobuf, about 18 MB) out of the binary.
func newSpeaker(*config.Config, string, *slog.Logger) (speaker, error) { return nil, errNoBGP }

// ensureLocal refuses too: creating the BGP VIPs' dummy interface is
// netlink's link-creation code, about 90 kB the L2 build does without.
func ensureLocal(string) (bool, error) { return false, errNoBGP }

func registerBGPMetrics(*metrics.Registry, speaker) {}

func bgpStatus(speaker) *control.BGP { return nil }
