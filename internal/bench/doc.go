// Package bench is `mobileid bench`: a load generator for the complete
// platform, in this process or against a running `mobileid up`. It drives
// ETSI TS 102 204 MSS_Signature (synch, or asynchClientServer with
// MSS_StatusQuery), MID REST authentications or OpenID Connect CIBA at a
// fixed concurrency (closed loop) or a fixed arrival rate (open loop),
// with virtual phones whose users answer at once or after a think time,
// and reports throughput, latency percentiles, errors by status, CPU per
// transaction and peak memory, beside the crypto floor: the rate at which
// the same process does only the cryptography one transaction needs. Its
// pending test holds many transactions that are never answered until
// their time-out, and reports the memory each one costs and whether each
// ended once, with its time-out status.
//
// Like internal/up it is wiring: it imports whatever it needs to start the
// platform and act as its relying parties. docs/PERFORMANCE.md says how to
// run it and how to read its output.
package bench
