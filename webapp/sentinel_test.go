package webapp_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/redistest"
	"github.com/hbdproject/hbd/webapp"
)

// Sessions written through a Sentinel-managed master are still readable
// through the app after the master dies and Sentinel promotes the replica,
// and new sessions can be written to the new master.
func TestSentinelFailover(t *testing.T) {
	const masterName = "hbdtest"
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	eventually(t, wait, "replica in sync", func() error {
		info, err := replica.Do("INFO", "replication")
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica not linked: %v", err)
		}
		return nil
	})
	sentinel := redistest.StartSentinel(t, masterName, master, 500*time.Millisecond)
	eventually(t, wait, "sentinel sees the replica", func() error {
		reps, err := sentinel.Do("SENTINEL", "REPLICAS", masterName)
		if err != nil || !strings.Contains(reps, replica.Port()) {
			return fmt.Errorf("replicas %q: %v", reps, err)
		}
		return nil
	})

	a := startApp(t, webapp.Config{Node: "pc01"}, redisconn.Options{
		SentinelMaster: masterName,
		SentinelAddrs:  []string{sentinel.Addr},
	})
	names := []string{"小潘", "Alice", "Bob"}
	clients := make([]*client, len(names))
	for i, n := range names {
		clients[i] = newClient(t)
		wantStatus(t, "save "+n, clients[i].saveName(a.URL, n), 200)
	}
	eventually(t, wait, "sessions replicated", func() error {
		for i, c := range clients {
			if n, _ := replica.Do("EXISTS", webapp.DefaultKeyPrefix+c.sessionID(a.URL)); n != "1" {
				return fmt.Errorf("session %d not on the replica yet", i)
			}
		}
		return nil
	})

	master.Kill()
	eventually(t, wait, "replica promoted", func() error {
		role, err := replica.Do("ROLE")
		if err != nil || !strings.HasPrefix(role, "master") {
			return fmt.Errorf("role %q: %v", role, err)
		}
		return nil
	})
	start := time.Now()
	eventually(t, wait, "sessions readable after failover", func() error {
		for i, c := range clients {
			res := c.readName(a.URL)
			if res.Status != 200 || res.str("name") != names[i] {
				return fmt.Errorf("session %d: %d %s", i, res.Status, res.Body)
			}
		}
		return nil
	})
	t.Logf("sessions readable %v after promotion was seen", time.Since(start).Round(time.Millisecond))
	c := newClient(t)
	eventually(t, wait, "write after failover", func() error {
		if res := c.saveName(a.URL, "Carol"); res.Status != 200 {
			return fmt.Errorf("save: %d %s", res.Status, res.Body)
		}
		return nil
	})
	if n, _ := replica.Do("EXISTS", webapp.DefaultKeyPrefix+c.sessionID(a.URL)); n != "1" {
		t.Fatal("the new session is not on the promoted replica")
	}
	wantStatus(t, "healthz after failover", c.get(a.URL+"/healthz"), 200)
}

// The app works against a Redis Cluster (one node holding all slots).
func TestCluster(t *testing.T) {
	node := redistest.StartCluster(t)
	a := startApp(t, webapp.Config{Node: "pc01"}, redisconn.Options{ClusterAddrs: []string{node.Addr}})
	c := newClient(t)
	wantStatus(t, "save", c.saveName(a.URL, "小潘"), 200)
	res := c.readName(a.URL)
	wantStatus(t, "read", res, 200)
	if res.str("name") != "小潘" {
		t.Fatalf("read %s", res.Body)
	}
	wantStatus(t, "healthz", c.get(a.URL+"/healthz"), 200)
	// A second save rotates the ID and deletes the old key (a different slot).
	old := c.sessionID(a.URL)
	wantStatus(t, "save again", c.saveName(a.URL, "Alice"), 200)
	if n, _ := node.Do("EXISTS", webapp.DefaultKeyPrefix+old); n != "0" {
		t.Fatal("the replaced session was not deleted")
	}
}
