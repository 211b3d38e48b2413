// Package ui holds Linkdesk's Fyne screens: service setup, sign-in and accounts,
// entering and confirming a device's code, and managing linked devices.
//
// The package does no HTTP and no keyring work of its own. Each screen states the
// small interface it needs (CodeLookup, LinkDecider, DeviceService,
// SessionService, ServiceConnector); main.go adapts the auth and devices
// packages to them, and App (the main window) wires the screens together using
// only what each exposes (its content, focus, Stop and a few actions).
// Single-instance handoff and linkdesk:// registration, which need no Fyne, are in
// package ui/desktop.
//
// Threading: network and keyring calls run off the UI goroutine through a task
// (cancellable context, superseded runs dropped) and come back through doUI,
// which is fyne.Do. Under the Fyne test driver fyne.Do runs on the calling
// goroutine instead of one UI goroutine, so the tests swap doUI for fyne.Do
// under a test-only lock and take the same lock (helpers locked and waitFor)
// when they touch widgets; that keeps `go test -race -tags migrated_fynedo
// ./ui/` clean with no lock in the app itself.
//
// Errors become plain words in one place, Explain, which also logs the full
// error with slog.
package ui
