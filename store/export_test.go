package store

// Hooks for the external tests (package store_test, which imports
// storetest, which imports store).
var (
	BoltFile  = boltFile
	AppendKey = appendKey
)

// Keys returns the record and timer keys of k.
func (r *Redis) Keys(k Key) (rec, timer string) { return r.keys(k) }
