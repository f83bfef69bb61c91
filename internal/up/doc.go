// Package up assembles the whole platform in one process, as `mobileid up`
// runs it on a laptop: the CA with its OCSP responder and TSA, the
// simulated mobile network (SMSC and virtual phones), the Signature Server
// with its Messaging Server, the Registration Server, the ID Server with
// its OpenID Connect provider, and the consoles.
//
// The parts talk as they do when each runs as its own process: SMPP over
// TCP between the Messaging Server and the SMSC, ETSI TS 102 204 over
// HTTPS from the Registration Server and the ID Server to the MSSP, OCSP
// over HTTP. Only the CA's issuance API is called in process. All state is
// in one embedded SQLite database and a few files in the data directory;
// the first start makes them (CA key ceremony, a SIM batch, demo people
// registered through the real flow, a demo relying party) and later starts
// reuse them.
//
// Like cmd/mobileid, this package is wiring: it is the one place besides
// the command that imports every component.
package up
