//go:build !race

package linkd_test

// memoryBound is how much a burst of sign-ins may grow this test binary's peak RSS
// (see race_on_test.go for the bound under the race detector).
const memoryBound = 512 << 20
