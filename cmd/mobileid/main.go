// The mobileid command is the one binary of the Mobile ID platform. Each
// server role and each operator tool is a sub-command; `mobileid help`
// lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one entry of the sub-command registry. Commands with
// sub-commands of their own (ota wrap, ota unwrap) are registered under
// their full name, with a space.
type command struct {
	name    string
	summary string
	// run executes the command; args excludes the command's name.
	run func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch of the outside world, passed in so that
// tests can run commands in-process.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

// registry returns every command of the binary.
func registry() []command {
	return []command{
		{"demo", "walk through registration, authentication, signature and revocation against a running up", runDemo},
		{"bench", "drive the whole platform with transactions and measure throughput, latency, CPU and memory", runBench},
		{"up", "run the whole system in one process, with demo people, a demo bank and the consoles", runUp},
		{"ota wrap", "wrap data into a TS 102 225 secured command packet", runOTAWrap},
		{"ota unwrap", "decode and verify a secured command or response packet", runOTAUnwrap},
		{"sim issue", "make a batch of SIM profiles: the operator's file and sealed card images", runSIMIssue},
		{"network", "run the simulated mobile network: SMSC, virtual phones and the phone console", runNetwork},
		{"messaging", "run the Messaging Server: SMPP ESME with a durable outbox and inbox", runMessaging},
		{"ca init", "run the CA key ceremony: root, issuing CA, OCSP responder and TSA certificates", runCAInit},
		{"ca revoke", "revoke a certificate and publish a new CRL", runCARevoke},
		{"ca list", "list issued certificates", runCAList},
		{"ca", "serve the CA: certificates, CRL, OCSP, TSA and the internal issuance API", runCA},
		{"mssp import-sims", "import a SIM batch's operator file (OTA keys sealed at rest) into the MSSP", runMSSPImportSIMs},
		{"mssp ap add", "register an application provider with the MSSP", runMSSPAPAdd},
		{"mssp ap list", "list the MSSP's application providers", runMSSPAPList},
		{"registration officer add", "add a registration officer for the desk and the JSON API", runRegistrationOfficerAdd},
		{"registration", "run the Registration Server: the registration desk and its JSON API", runRegistration},
		{"idserver rp add", "register a relying party with the ID Server", runIDServerRPAdd},
		{"idserver rotate-key", "make a new ID token signing key for the OpenID Connect provider", runIDServerRotateKey},
		{"idserver", "run the ID Server: the Mobile-ID REST API for relying parties", runIDServer},
		{"bank", "run the demo bank: a relying party that logs in and signs payments with Mobile ID", runBank},
		{"mssp", "run the Signature Server: ETSI TS 102 204 (SOAP 1.2 and JSON) with its Messaging Server", runMSSP},
	}
}

// usageError is an error in how the command was called; it makes the
// binary exit with status 2 instead of 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args to a command and returns the process exit status.
func run(ctx context.Context, e *env, args []string) int {
	cmds := registry()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			// "mobileid help ota wrap" is "mobileid ota wrap -h".
			return run(ctx, e, append(args[1:], "-h"))
		}
		printHelp(e.stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var found *command
	var rest []string
	for i := range cmds {
		words := strings.Fields(cmds[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmds[i].name {
			found, rest = &cmds[i], args[len(words):]
			break
		}
	}
	if found == nil {
		var subs []string
		for _, c := range cmds {
			if strings.HasPrefix(c.name, args[0]+" ") {
				subs = append(subs, c.name)
			}
		}
		if len(subs) > 0 {
			fmt.Fprintf(e.stderr, "mobileid %s: want one of: %s\n", args[0], strings.Join(subs, ", "))
		} else {
			fmt.Fprintf(e.stderr, "mobileid: unknown command %q; run 'mobileid help'\n", args[0])
		}
		return 2
	}
	err := found.run(ctx, e, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(e.stderr, "mobileid %s: %v\n", found.name, err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func printHelp(w io.Writer, cmds []command) {
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	fmt.Fprintln(w, "Usage: mobileid <command> [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'mobileid <command> -h' for the flags of a command.")
}

// newFlags returns a flag set that reports errors instead of exiting. Its
// Usage prints the command's help to stderr. Every command takes
// --config, a file of flag values (see applyConfig).
func newFlags(e *env, name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.String(configFlag, "", "file of flag values, one name = value per line; flags given on the command line win")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: mobileid %s [flags] %s\n\n%s\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags that may come before or after the positional
// arguments, as operators type them in either order. A bad flag is
// reported in one line, without the usage text; -h prints the usage.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				usage()
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			if err := applyConfig(fs); err != nil {
				return nil, err
			}
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
