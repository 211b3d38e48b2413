//go:build race

package linkd_test

// memoryBound is how much a burst of sign-ins may grow this test binary's peak RSS.
// The race detector's shadow memory multiplies every 64 MiB password hash (three
// checked hashes reach about 470 MiB), so the bound under it is looser; it still
// catches the failure it guards against, sixty hashes at once (over 3.8 GiB).
const memoryBound = 1536 << 20
