//go:build race

package fs

// raceEnabled: the race detector's shadow memory multiplies RSS, so bounds
// on the process's RSS do not hold under it.
const raceEnabled = true
