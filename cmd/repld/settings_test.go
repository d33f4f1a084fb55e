package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// testCmd is a command with flags of each kind the node commands use.
type testFlags struct {
	data    string
	timeout time.Duration
	k       int
	sync    *choiceValue
}

func newTestCmd(f *testFlags, lookupEnv func(string) (string, bool), run func()) *cobra.Command {
	f.sync = newChoice("async", "async", "received", "applied")
	var config string
	cmd := &cobra.Command{
		Use:           "node",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applySettings(cmd, lookupEnv); err != nil {
				return err
			}
			run()
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&config, "config", "", "")
	fs := cmd.Flags()
	fs.StringVar(&f.data, "data", "default-data", "")
	fs.DurationVar(&f.timeout, "sync-timeout", time.Second, "")
	fs.IntVar(&f.k, "sync-replicas", 1, "")
	addChoice(cmd, fs, f.sync, "sync", "")
	return cmd
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "repld.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSettingsPrecedence(t *testing.T) {
	conf := writeConfig(t, "# test\ndata = /from/file\nsync-timeout = 3s\nsync-replicas = 3\nsync = received\n")
	var f testFlags
	ran := false
	cmd := newTestCmd(&f, envMap(map[string]string{
		"REPLD_CONFIG":        conf,
		"REPLD_SYNC_TIMEOUT":  "2s",
		"REPLD_SYNC_REPLICAS": "2",
	}), func() { ran = true })
	cmd.SetArgs([]string{"--sync-replicas", "5"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("command did not run")
	}
	// flag > env > file > default
	if f.k != 5 || f.timeout != 2*time.Second || f.data != "/from/file" || f.sync.String() != "received" {
		t.Errorf("got k=%d timeout=%v data=%q sync=%s; want 5, 2s, /from/file, received", f.k, f.timeout, f.data, f.sync)
	}

	var d testFlags
	cmd = newTestCmd(&d, envMap(nil), func() {})
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if d.data != "default-data" || d.k != 1 || d.sync.String() != "async" {
		t.Errorf("defaults: %+v", d)
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		conf string
		args []string
		want []string
	}{
		{
			name: "bad env value",
			env:  map[string]string{"REPLD_SYNC_TIMEOUT": "soon"},
			want: []string{"--sync-timeout", "REPLD_SYNC_TIMEOUT", `"soon"`},
		},
		{
			name: "bad choice from env",
			env:  map[string]string{"REPLD_SYNC": "eventually"},
			want: []string{"--sync", `"eventually"`, "async, received, applied"},
		},
		{
			name: "bad file value",
			conf: "\n\nsync-replicas = many\n",
			want: []string{"--sync-replicas", "line 3", `"many"`},
		},
		{
			name: "unknown setting",
			conf: "data = x\nlisten-address = 1\n",
			want: []string{"line 2", `"listen-address"`, "--help"},
		},
		{
			name: "config names itself",
			conf: "config = other.conf\n",
			want: []string{`"config" is not a setting`},
		},
		{
			name: "bad choice on the command line",
			args: []string{"--sync", "fast"},
			want: []string{"--sync", `"fast"`, "async, received, applied"},
		},
		{
			name: "missing file",
			args: []string{"--config", "/nonexistent/repld.conf"},
			want: []string{"config file", "/nonexistent/repld.conf"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			if tc.conf != "" {
				env["REPLD_CONFIG"] = writeConfig(t, tc.conf)
			}
			var f testFlags
			cmd := newTestCmd(&f, envMap(env), func() { t.Error("command ran despite the error") })
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	got, err := parseConfig([]byte("# comment\r\n  data = /var/lib/repld  \r\n\n   # indented comment\nname=\"a # b \\\"q\\\" \"\nsync-timeout = 2s # not a comment\nempty =\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []configEntry{
		{Name: "data", Value: "/var/lib/repld", Line: 2},
		{Name: "name", Value: `a # b "q" `, Line: 5},
		{Name: "sync-timeout", Value: "2s # not a comment", Line: 6},
		{Name: "empty", Value: "", Line: 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}

	for _, tc := range []struct{ in, want string }{
		{"data /x", `line 1: "data /x" is not name = value`},
		{"\nData = x", `line 2: "Data" is not a setting name`},
		{"= x", `line 1: "" is not a setting name`},
		{"a = 1\nb = 2\na = 3", "line 3: a is already set on line 1"},
		{`a = "open`, "line 1: value of a"},
		{`a = "x" y`, "line 1: value of a"},
		{"a = x\x01y", "control character"},
		{"a = \xff", "not UTF-8"},
	} {
		if _, err := parseConfig([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

// formatConfig writes entries in the config format, every value quoted.
func formatConfig(entries []configEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.WriteString(e.Name + " = " + strconv.Quote(e.Value) + "\n")
	}
	return b.Bytes()
}

func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"", "# c\n", "data = /x\nsync = applied\n", `name = "a \"b\""`, "a=1\r\nb=2", "a = 1\na = 2",
		"x = \"\\u00e9\\x00\"", "bad line", "k = \xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseConfig(data)
		if err != nil {
			return
		}
		// What was accepted formats and parses back to the same settings.
		again, err := parseConfig(formatConfig(entries))
		if err != nil {
			t.Fatalf("reparse of %q: %v", formatConfig(entries), err)
		}
		if len(again) != len(entries) {
			t.Fatalf("reparse has %d entries, want %d", len(again), len(entries))
		}
		for i := range entries {
			if again[i].Name != entries[i].Name || again[i].Value != entries[i].Value {
				t.Fatalf("entry %d: %+v after reparse, want %+v", i, again[i], entries[i])
			}
		}
	})
}
