package main
import (
 _ "github.com/vishvananda/netlink"
 _ "github.com/mdlayher/arp"
 _ "github.com/mdlayher/ndp"
 _ "github.com/mdlayher/ethernet"
 _ "github.com/redis/go-redis/v9"
 _ "github.com/chromedp/chromedp"
 _ "pgregory.net/rapid"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "go.yaml.in/yaml/v3"
 _ "golang.org/x/sys/unix"
 _ "gonum.org/v1/plot"
)
func main(){}
