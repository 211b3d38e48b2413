// Package scantest holds test helpers for QR scanning: pure-Go picture
// distortions (rotation, perspective, blur, noise, glare…) and QR rendering, to
// build corpora of photo-like pictures for the scan and ui tests. It is for
// tests only; nothing in the app imports it.
package scantest
