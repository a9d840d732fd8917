// Package photo is photosync's vocabulary, the leaf every other part shares:
// the nine photo sizes and their names in each dialect, what an owner's
// address may be, what a Source is and what it may answer (Result, Status),
// the walk that asks sources in order (Walk, Trace), and the checks and
// limits every body from a source passes before it is stored.
//
// It imports nothing of photosync's, so the engine, the sources and the
// web face can all depend on it without depending on each other.
package photo
