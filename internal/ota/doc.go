// Package ota implements the secured packets of ETSI TS 102 225 as profiled
// for SMS-PP by 3GPP TS 31.115: the command packet that an operator sends to
// an application on a SIM and the response packet (Proof of Receipt, PoR)
// that the card returns.
//
// Both sides are covered. A sender wraps commands with WrapCommand and opens
// responses with OpenResponse; a card parses commands with
// ParseCommandPacket, opens them with (*CommandPacket).Open, checks the
// counter with CheckCounter and answers with WrapResponse or
// WrapUnsecuredResponse.
//
// The processing order follows TS 102 225 §5 and is confirmed by vectors
// from cards in the field: zero padding is added only when ciphering, the
// cryptographic checksum (CC) of a command covers CPL through the padding but
// not the SMS user data header, the CC of a response does include the three
// header octets 02 71 00, and ciphering uses CBC with a zero IV over
// everything from the counter onward. Algorithms: AES-CBC and AES-CMAC with
// 128, 192 and 256-bit keys, two- and three-key triple DES in CBC mode and
// CBC-MAC, single DES (CBC and ECB) for decoding legacy packets, and the
// CRC-16 and CRC-32 redundancy checks. Digital signatures (SPI integrity
// 11) are recognised and refused.
//
// The package does no I/O and keeps no state: counters and keys belong to
// the caller.
package ota
