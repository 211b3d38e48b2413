package scan

// Internals the external camera tests reach.
var (
	PickProperty     = pickProperty
	CopyFrame        = copyFrame
	VideoAccessError = videoAccessError
)
