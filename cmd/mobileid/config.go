package main

import (
	"bufio"
	"flag"
	"os"
	"strconv"
	"strings"
)

// configFlag names the flag that points at a configuration file.
const configFlag = "config"

// applyConfig sets the flags that the command line left unset from the
// file that --config names. The file has one `name = value` per line,
// where name is a flag's name without dashes; blank lines and lines
// starting with # are ignored; a value may be written in double quotes
// (Go syntax). A flag that takes a list may appear on several lines. An
// unknown name, a name given twice (other than a list) or a bad value is
// an error that says where.
//
// Secrets (passwords, keys) are never flags: they come from the
// environment, so a configuration file holds nothing that must be kept
// secret.
func applyConfig(fs *flag.FlagSet) error {
	path := fs.Lookup(configFlag).Value.String()
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return usagef("--config: %v", err)
	}
	defer f.Close()
	onCommandLine := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { onCommandLine[fl.Name] = true })
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return usagef("%s:%d: want name = value", path, n)
		}
		fl := fs.Lookup(name)
		if fl == nil || name == configFlag {
			return usagef("%s:%d: unknown key %q for mobileid %s", path, n, name, fs.Name())
		}
		if strings.HasPrefix(value, `"`) {
			if value, err = strconv.Unquote(value); err != nil {
				return usagef("%s:%d: %s: bad quoted value", path, n, name)
			}
		}
		_, list := fl.Value.(*listFlag)
		if seen[name] && !list {
			return usagef("%s:%d: %s is set twice", path, n, name)
		}
		seen[name] = true
		if onCommandLine[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return usagef("%s:%d: bad value %q for %s: %v", path, n, value, name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return usagef("--config: %s: %v", path, err)
	}
	return nil
}
