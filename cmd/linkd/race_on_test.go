//go:build race

package main

// raceDetector: this binary (and the linkd it re-executes) carries the race
// detector, whose shadow memory multiplies every allocation.
const raceDetector = true
