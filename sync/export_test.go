package sync

// StoreWaits is storeWaits, for the warm's test.
const StoreWaits = storeWaits
