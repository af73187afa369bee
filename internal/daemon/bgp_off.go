//go:build nobgp

package daemon

import (
	"errors"
	"log/slog"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/metrics"
)

// errNoBGP is newSpeaker's error in a build without BGP.
var errNoBGP = errors.New("this hbd was built with the nobgp tag and has no BGP announcer: remove the bgp section, or use the packaged build")

// newSpeaker refuses: the nobgp build leaves GoBGP (and with it gRPC and
// protobuf, about 18 MB) out of the binary.
func newSpeaker(*config.Config, string, *slog.Logger) (speaker, error) { return nil, errNoBGP }

func registerBGPMetrics(*metrics.Registry, speaker) {}

func bgpStatus(speaker) *control.BGP { return nil }
