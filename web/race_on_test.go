//go:build race

package web_test

// raceEnabled: the race detector drops pooled objects at random, so
// allocation counts are not checked under it.
const raceEnabled = true
