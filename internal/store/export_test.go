package store

// TxAttempts exposes how often InTx tries a transaction, for the tests.
const TxAttempts = txAttempts
