// Package handset is the radio side of the simulated mobile network: a
// Network of virtual phones, each holding one virtual SIM (internal/sim),
// reachable by its MSISDN.
//
// The SMSC reaches a phone through Network.DeliverSMS with a complete
// SMS-DELIVER TPDU, as the radio network would deliver it. A class-2
// message with protocol identifier 7F is a (U)SIM data download: the phone
// reassembles the secured command packet, hands it to the card, stores the
// card's new state on disk and sends the card's response packet back as
// SMS-SUBMITs through an Uplink, which the wiring connects to the SMSC.
// Any other message is text for the phone's inbox.
//
// The person holding a phone is either scripted (approve, enter a wrong
// PIN, cancel, never answer, approve after thinking) or a human at the web
// console that Network.Handler serves, where every phone is drawn with its
// screen, keys, PIN pad and inbox and kept up to date over server-sent
// events.
//
// The package does not import the SMSC and the operator's side never
// imports this one: the two meet only through DeliverSMS and Uplink, as a
// real SMSC and a real radio network meet only through the air interface.
// PINs, PUKs and keys are never logged and never rendered; the PIN pad
// shows ● for each digit.
package handset
