// Package registration is the Registration Server: the registration desk
// where an RA officer records the person they identified (names, national
// ID, date of birth, the identity document checked and the mobile number
// whose SIM will hold the keys). The record is validated field by field,
// with messages an officer can act on, and is made acceptable to the CA
// before anything is asked of the SIM: a record that passes here is
// certified as it is, with the names exactly as the document writes them.
package registration
