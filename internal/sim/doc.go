// Package sim is the secure element of a virtual SIM card running the VMAC
// Mobile ID applet (docs/vmac-protocol.md).
//
// A Card takes a TS 102 225 secured command packet, checks it as a real
// card's OTA layer does (TAR, minimum security level, keys, checksum,
// counter), runs the applet command, talking to its user through the User
// interface, and returns the secured response packet. Private keys, PINs
// and the PUK never leave this package: no exported function returns them
// and no error message contains them. The package does no I/O: a handset
// stores the sealed card image that Image returns and gives it back to Open
// after a restart.
//
// The operator's side of the platform never imports this package; it
// reaches a card only through SMS, as in reality. Factory is the SIM
// vendor's personalisation line that makes cards and the operator's batch
// file.
package sim
