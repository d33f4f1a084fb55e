package replica

import (
	"strings"
	"testing"
	"time"

	"github.com/repld/repld/storage/memstore"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("the zero Config is valid")
	} else {
		for _, want := range []string{"Name", "DataDir", "Store", "Node", "Primary"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	}
	n := newNetwork(t)
	store, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	good := Config{Name: "r", DataDir: t.TempDir(), Store: store, Node: n.node("r"), Primary: "p"}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Fragment = -1 }, "Fragment -1"},
		{func(c *Config) { c.JoinBackoffMin, c.JoinBackoffMax = time.Second, time.Millisecond }, "JoinBackoffMin"},
		{func(c *Config) { c.JoinTimeout = -time.Second }, "JoinTimeout"},
		{func(c *Config) { c.Name = strings.Repeat("x", 256) }, "Name"},
	} {
		c := good
		tc.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want an error naming %s", err, tc.want)
		}
	}
	if _, err := Open(t.Context(), Config{}); err == nil {
		t.Fatal("Open accepted the zero Config")
	}
}
