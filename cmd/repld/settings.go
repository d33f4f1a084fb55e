package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Settings come from four places; the first that has a value wins:
//
//  1. the command line (--sync applied),
//  2. the environment (REPLD_SYNC=applied: REPLD_, the flag's long name in
//     upper case, dashes turned into underscores),
//  3. the config file named by --config or REPLD_CONFIG,
//  4. the flag's default.
//
// The config file holds "name = value" lines whose names are the command's
// long flag names; see parseConfig for the exact format.

// envPrefix starts the environment variable of every flag.
const envPrefix = "REPLD_"

// maxConfigSize bounds the config file we read: it is a handful of lines.
const maxConfigSize = 1 << 20

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configEntry is one "name = value" line of a config file.
type configEntry struct {
	Name  string
	Value string
	Line  int
}

// settable reports whether a flag may come from the environment or the
// config file; --config and --help only make sense on the command line.
func settable(name string) bool { return name != "config" && name != "help" }

// applySettings fills every flag of cmd not given on the command line from
// the environment, then from the config file. lookupEnv is os.LookupEnv
// outside tests. A value a flag does not accept is an error naming the flag,
// where the value came from and the value; so is a config line naming no
// flag of cmd.
func applySettings(cmd *cobra.Command, lookupEnv func(string) (string, bool)) error {
	flags := cmd.Flags()
	entries, path, err := loadConfig(flags, lookupEnv)
	if err != nil {
		return err
	}
	byName := make(map[string]configEntry, len(entries))
	for _, e := range entries {
		if f := flags.Lookup(e.Name); f == nil || !settable(e.Name) {
			return fmt.Errorf("config file %s line %d: %q is not a setting of %q; use the long flag names listed by %q",
				path, e.Line, e.Name, cmd.CommandPath(), cmd.CommandPath()+" --help")
		}
		byName[e.Name] = e
	}
	var errs []error
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed || !settable(f.Name) {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := flags.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for --%s from environment variable %s: %v", v, f.Name, envName(f.Name), err))
			}
			return
		}
		if e, ok := byName[f.Name]; ok {
			if err := flags.Set(f.Name, e.Value); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for --%s from config file %s line %d: %v", e.Value, f.Name, path, e.Line, err))
			}
		}
	})
	return errors.Join(errs...)
}

// loadConfig reads the config file named by --config or REPLD_CONFIG, if
// any.
func loadConfig(flags *pflag.FlagSet, lookupEnv func(string) (string, bool)) ([]configEntry, string, error) {
	var path string
	if f := flags.Lookup("config"); f != nil && f.Changed {
		path = f.Value.String()
	} else if v, ok := lookupEnv(envName("config")); ok {
		path = v
	}
	if path == "" {
		return nil, "", nil
	}
	data, err := readLimited(path, maxConfigSize)
	if err != nil {
		return nil, path, fmt.Errorf("config file: %w", err)
	}
	entries, err := parseConfig(data)
	if err != nil {
		return nil, path, fmt.Errorf("config file %s: %w", path, err)
	}
	return entries, path, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes; a config file holds a few name = value lines", path, limit)
	}
	return data, nil
}

// parseConfig parses a config file strictly. The format:
//
//   - UTF-8 text, one setting per line: name = value. Spaces around the
//     name and the value are ignored.
//   - A line that is empty or starts with # (after spaces) is ignored; a #
//     elsewhere is part of the value.
//   - name is a long flag name: lower-case letters, digits and dashes,
//     starting with a letter. A name may appear once.
//   - value is the rest of the line, or a double-quoted Go string literal
//     ("a \"b\"") when it needs leading or trailing spaces or escapes.
//     Unquoted values may not contain control characters.
//
// Anything else is an error naming the line.
func parseConfig(data []byte) ([]configEntry, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8 text")
	}
	var entries []configEntry
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, value, ok := strings.Cut(trimmed, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not name = value", n, trimmed)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !validName(name) {
			return nil, fmt.Errorf("line %d: %q is not a setting name (lower-case letters, digits and dashes, like sync-timeout)", n, name)
		}
		if first, dup := seen[name]; dup {
			return nil, fmt.Errorf("line %d: %s is already set on line %d; set it once", n, name, first)
		}
		if strings.HasPrefix(value, `"`) {
			unq, err := strconv.Unquote(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: value of %s, %s, is not a valid quoted string (%v); close the quotes and escape \" and \\ inside", n, name, value, err)
			}
			value = unq
		} else if i := strings.IndexFunc(value, unicode.IsControl); i >= 0 {
			return nil, fmt.Errorf("line %d: value of %s has control character %q; quote the value and escape it", n, name, value[i])
		}
		seen[name] = n
		entries = append(entries, configEntry{Name: name, Value: value, Line: n})
	}
	return entries, nil
}

func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// choiceValue is a string flag that accepts one of a fixed set of values, so
// a typo fails at parse time with the list of valid ones.
type choiceValue struct {
	value   string
	choices []string
}

func newChoice(def string, choices ...string) *choiceValue {
	return &choiceValue{value: def, choices: choices}
}

func (c *choiceValue) String() string { return c.value }

func (c *choiceValue) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("want one of %s", strings.Join(c.choices, ", "))
	}
	c.value = s
	return nil
}

func (c *choiceValue) Type() string { return strings.Join(c.choices, "|") }

// completion offers the choices to shell completion.
func (c *choiceValue) completion(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return c.choices, cobra.ShellCompDirectiveNoFileComp
}

// addChoice registers a choice flag with its shell completion.
func addChoice(cmd *cobra.Command, flags *pflag.FlagSet, c *choiceValue, name, usage string) {
	flags.Var(c, name, usage)
	_ = cmd.RegisterFlagCompletionFunc(name, c.completion)
}
