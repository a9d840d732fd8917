package store

// Hooks for the external tests (package store_test, which imports
// storetest, which imports store).
var (
	BoltFile  = boltFile
	AppendKey = appendKey
)

// RecordKey returns the key of k's record.
func (r *Redis) RecordKey(k Key) string { return r.recordKey(k) }
