// Package smpp is a codec for the SMPP 3.4 PDUs that the platform's
// Messaging Server (an ESME) and SMSC simulator exchange: the binds,
// submit_sm, deliver_sm, enquire_link, unbind and generic_nack with their
// responses, optional parameters (TLVs), delivery receipt texts and SMPP
// times. It also frames PDUs on a connection.
//
// The codec keeps every field byte-exact — data_coding 0xF6, esm_class and
// the user data header inside short_message pass through untouched — which
// is what binary SMS to a SIM (TS 31.115 secured packets) need. Decoding
// errors are *Error values that carry the SMPP command_status to answer
// with, so a server can reply with generic_nack or a response status and
// keep the link.
package smpp
