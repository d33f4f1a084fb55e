package gcs

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig("n").Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := (Config{Name: "n"}).Validate(); err != nil {
		t.Fatalf("zero fields take defaults: %v", err)
	}
	bad := Config{
		MaxMessage:        -1,
		HeartbeatInterval: time.Second,
		FailureTimeout:    time.Second,
		SlowMemberTimeout: -time.Second,
		WindowMessages:    -5,
		WindowBytes:       10,
		ReconnectMin:      time.Second,
		ReconnectMax:      time.Millisecond,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	// Every problem is reported, each with the setting, the value and a fix.
	for _, want := range []string{
		`Name "" has 0 bytes: set 1 to`,
		"MaxMessage -1 out of range: set 1 to",
		"FailureTimeout 1s is less than two HeartbeatIntervals (1s): set at least 2s",
		"SlowMemberTimeout -1s is negative",
		"WindowMessages -5 out of range",
		"ReconnectMax 1ms is less than ReconnectMin 1s: set at least 1s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := (Config{Name: "n", WindowBytes: 10}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "WindowBytes 10 is less than MaxMessage 102400: set at least 102400") {
		t.Fatalf("small window: %v", err)
	}
	if _, err := NewNode(bad, nil); err == nil {
		t.Fatal("NewNode accepted a bad config")
	}
	if _, err := NewNode(DefaultConfig("n"), nil); err == nil || !strings.Contains(err.Error(), "nil StreamLayer") {
		t.Fatalf("NewNode without a layer: %v", err)
	}
	if err := validGroupName(strings.Repeat("g", 256)); err == nil || !strings.Contains(err.Error(), "256 bytes: use 1 to 255") {
		t.Fatalf("long group name: %v", err)
	}
}
